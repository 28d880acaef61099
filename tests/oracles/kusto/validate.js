// Semantic validation of KQL with Microsoft's Kusto.Language (npm @kusto/language-service-next).
// stdin: {"queries": ["...", ...], "watchlist_columns": ["extra", ...]} (watchlist_columns optional)
// stdout: [[{"severity", "code", "message", "start", "length"}, ...], ...] one list per query.
// With --serve: one such JSON request per stdin line, one JSON answer per stdout line (a session
// keeps one process, so the 0.25 s load is paid once).
// The tables, ASIM parser functions and the watchlist function are declared from schemas.json.
"use strict";
const fs = require("fs");
const path = require("path");
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const K = Kusto.Language;
const Sym = K.Symbols;

function schemaText(cols) {
  return "(" + Object.entries(cols).map(([c, t]) => `['${c}']:${t}`).join(", ") + ")";
}

function globalsFor(schemas, extraWatchlistColumns) {
  const members = [];
  for (const [name, cols] of Object.entries(schemas.tables)) {
    members.push(new Sym.TableSymbol.$ctor7(name, schemaText(cols), null));
  }
  for (const [name, cols] of Object.entries(schemas.functions)) {
    const table = new Sym.TableSymbol.$ctor7(name, schemaText(cols), null);
    members.push(new Sym.FunctionSymbol.$ctor5(name, table, []));
  }
  // Sentinel's _GetWatchlist(alias): watchlist metadata columns plus the CSV columns (strings).
  const wl = { _DTItemId: "string", LastUpdatedTimeUTC: "datetime", SearchKey: "string", WatchlistItem: "dynamic" };
  for (const c of schemas.watchlist_columns.concat(extraWatchlistColumns || [])) wl[c] = wl[c] || "string";
  const wlTable = new Sym.TableSymbol.$ctor7("Watchlist", schemaText(wl), null);
  const alias = new Sym.Parameter.$ctor2("watchlistAlias", Sym.ScalarTypes.String);
  members.push(new Sym.FunctionSymbol.$ctor5("_GetWatchlist", wlTable, [alias]));
  const db = new Sym.DatabaseSymbol.$ctor1("sentinel", members, false);
  return K.GlobalState.Default.WithDatabase(db);
}

const SCHEMAS = JSON.parse(fs.readFileSync(path.join(__dirname, "schemas.json"), "utf8"));
const cache = new Map();

function answer(input) {
  const key = JSON.stringify(input.watchlist_columns || []);
  if (!cache.has(key)) cache.set(key, globalsFor(SCHEMAS, input.watchlist_columns));
  const globals = cache.get(key);
  const out = [];
  for (const q of input.queries) {
    const code = K.KustoCode.ParseAndAnalyze(q, globals);
    const diags = code.GetDiagnostics();
    const errs = [];
    for (let i = 0; i < diags.Count; i++) {
      const d = diags.getItem(i);
      errs.push({ severity: d.Severity, code: d.Code, message: d.Message, start: d.Start, length: d.Length });
    }
    out.push(errs);
  }
  return JSON.stringify(out);
}

if (process.argv.includes("--serve")) {
  const rl = require("readline").createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim()) process.stdout.write(answer(JSON.parse(line)) + "\n");
  });
} else {
  process.stdout.write(answer(JSON.parse(fs.readFileSync(0, "utf8"))));
}
