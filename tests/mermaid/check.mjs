// Parse Mermaid graph files with Mermaid 11's own parser (the library GitHub draws with).
// Usage: node check.mjs FILE...  ->  one JSON line per file: {"file", "ok", "type"|"error"}.
// Exit 0 when every file parses, 1 when one does not, 2 on a usage error.
// Mermaid's module touches `window`/`document` at import (DOMPurify), so a jsdom window stands
// in for the browser; `mermaid.parse` itself only runs the diagram's grammar.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
globalThis.DOMParser = window.DOMParser;
globalThis.Element = window.Element;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check.mjs FILE...");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    console.log(JSON.stringify({ file, ok: true, type: result.diagramType }));
  } catch (err) {
    failed = true;
    console.log(JSON.stringify({ file, ok: false, error: String(err?.message ?? err) }));
  }
}
process.exit(failed ? 1 : 0);
