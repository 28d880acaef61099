"""extract_ips() in SPL: every IPv4/IPv6 address of a text, in order, without duplicates.

docs/semantics.md (Functions) and compiler/evaluator/values.py define the result: IPv6 tokens
(runs of hex digits, colons and dots not glued to other word characters) that are valid IPv6
addresses (the dotted tail an IPv4 address) give their compressed lower-case form, or the IPv4
address of a ``::ffff:`` mapped one; IPv4 candidates (four runs of 1-3 digits) that are valid
(octets up to 255, no leading zero) and do not start inside such an IPv6 token give themselves.

The SPL works on a copy of the text: the four marker characters ``< > [ ]`` are blanked first
(a blank is, like them, neither a digit, a dot, a hex digit nor a word character, so no token
changes), every IPv6 token is wrapped in ``<>`` by ``replace`` (PCRE finds the same tokens as
the evaluator's regular expression), the valid ones re-wrapped in ``[]`` and the other marks
removed; one ``rex max_match=0`` then lists the valid IPv6 tokens and the IPv4 candidates in
order of appearance, and ``mvmap`` steps normalise them: a dotted tail to two hex groups, ``::``
expanded to eight groups, leading zeros dropped, a mapped address printed as IPv4, the longest
(first) run of two or more zero groups compressed to ``::``
(https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Rex,
https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/MultivalueEvalFunctions).
"""

from __future__ import annotations

from backends.splunk.expr import eval_str, field_ref

# the evaluator's IPv6 token (compiler/evaluator/values.py _V6_TOKEN)
TOKEN = r"(?<![G-Zg-z_])([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(?![G-Zg-z_])"
# the evaluator's IPv4 candidate (_IPV4, ASCII digits: other scripts' digits are no numbers)
V4_CANDIDATE = r"(?<![0-9.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9]|\.[0-9])"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"


def _valid_v6() -> str:
    """Python's IPv6Address grammar: eight groups, or fewer around one ``::`` that stands for
    at least one group; a dotted IPv4 tail counts as two groups. ``::`` alone has no hex digit
    and is not an address for extract_ips."""
    h = _H
    plain = [
        rf"(?:{h}:){{7}}{h}",
        rf"(?:{h}:){{1,7}}:",
        *(rf"(?:{h}:){{1,{7 - n}}}(?::{h}){{1,{n}}}" for n in range(1, 7)),
        rf"::(?:{h}:){{0,6}}{h}",
    ]
    dotted = [
        rf"(?:{h}:){{6}}{V4}",
        rf"::(?:{h}:){{0,5}}{V4}",
        *(rf"(?:{h}:){{{n}}}:(?:{h}:){{0,{5 - n}}}{V4}" for n in range(1, 6)),
    ]
    return "(?:" + "|".join(dotted + plain) + ")"


_HEX = '"0123456789abcdef"'
R = eval_str  # a regular expression (or replacement) as an eval string literal


def _hex2(octet: str) -> str:
    return f"substr({_HEX}, floor(({octet})/16)+1, 1).substr({_HEX}, ({octet})%16+1, 1)"


def _octet(x: str, i: int) -> str:
    return f'tonumber(mvindex(split(replace({x}, {R(r"^.*:|\]$")}, ""), "."), {i}))'


def commands(src: str, dst: str, cond: str | None) -> list[str]:
    """``dst`` (a field reference) = extract_ips(``src``) where ``cond`` holds (None: always)."""
    x = "siemc_ips"
    tmp = "siemc_ipx"
    hexes = [_hex2(_octet(x, i)) for i in range(4)]
    tail_hex = f'{hexes[0]}.{hexes[1]}.":".{hexes[2]}.{hexes[3]}'
    # ``::`` expanded: the groups left and right of it, zero groups between
    left = f'replace({x}, {R(r"^\[|::.*$")}, "")'
    right = f'replace({x}, {R(r"^.*::|\]$")}, "")'

    def count(part: str) -> str:
        return f'if({part}=="", 0, mvcount(split({part}, ":")))'

    zeros = f"8-{count(left)}-{count(right)}"
    middle = f'substr("0:0:0:0:0:0:0:0", 1, 2*({zeros})-1)'
    expanded = f'{left}.if({left}=="", "", ":").{middle}.if({right}=="", "", ":").{right}'
    compress = [
        f"match({x}, {R('(?::0){' + str(k) + '}:')}), "
        f"replace({x}, {R('^(.*?):0(?::0){' + str(k - 1) + '}:(.*)$')}, {R(r'\1::\2')})"
        for k in range(8, 1, -1)
    ]
    mapped = R("^:0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+):$")
    g7 = f"tonumber(replace({x}, {R('^.*:([0-9a-f]+):[0-9a-f]+:$')}, {R(r'\1')}), 16)"
    g8 = f"tonumber(replace({x}, {R('^.*:([0-9a-f]+):$')}, {R(r'\1')}), 16)"
    dotted = f'floor({g7}/256).".".({g7}%256).".".floor({g8}/256).".".({g8}%256)'
    is6 = f"match({x}, {R('^:')})"
    steps = [
        # IPv4 candidates that are not addresses (leading zeros, octets over 255) drop out
        f"eval {x}=mvmap({x}, if(match({x}, {R(r'^\[')}), lower({x}), "
        f"if(match({x}, {R('^' + V4 + '$')}), {x}, null())))",
        f"eval {x}=mvmap({x}, if(match({x}, {R(r'^\[.*\.')}), "
        f'replace({x}, {R(r"[0-9.]+\]$")}, {tail_hex}."]"), {x}))',
        f'eval {x}=mvmap({x}, if(match({x}, {R(r"^\[")}), ":".if(match({x}, "::"), '
        f'{expanded}, replace({x}, {R(r"^\[|\]$")}, "")).":", {x}))',
        f"eval {x}=mvmap({x}, if({is6}, replace({x}, {R(':0+([0-9a-f])')}, {R(r':\1')}), {x}))",
        f"eval {x}=mvmap({x}, case(match({x}, {mapped}), {dotted}, "
        + ", ".join(f"{is6} AND {c}" for c in compress)
        + f", true(), {x}))",
        f'eval {x}=mvdedup(mvmap({x}, if({is6}, replace({x}, {R("^:(?!:)|(?<!:):$")}, ""), {x})))',
    ]
    v6 = _valid_v6()
    mark = [
        f'eval {tmp}=replace(replace({field_ref(src)}, {R(r"[<>\[\]]")}, " "), '
        f"{R(TOKEN)}, {R(r'<\1>')})",
        f"eval {tmp}=replace(replace({tmp}, {R('<(' + v6 + r')(\.*)>')}, {R(r'[\1]\2')}), "
        f'{R("[<>]")}, "")',
        f"rex field={tmp} max_match=0 " + R(f"(?<{x}>\\[[^\\]]*\\]|{V4_CANDIDATE})"),
    ]
    assign = x if cond is None else f"if({cond}, {x}, {dst})"
    return [
        f"eval {x}=null()",
        *mark,
        *steps,
        f"eval {dst}={assign}",
        f"fields - {x} {tmp}",
    ]
