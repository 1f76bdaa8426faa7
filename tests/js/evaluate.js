// Evaluates FHIRPath with fhirpath.js (the engine of LHC-Forms): one JSON job per input line,
// {"resource": QR, "expression": "..."}, one JSON result per output line. Each expression is
// compiled once and evaluated on every job that uses it (the cases of an instrument share them).
const fhirpath = require("fhirpath");
const r4 = require("fhirpath/fhir-context/r4");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const compiled = new Map();
for (const line of lines) {
  const job = JSON.parse(line);
  try {
    if (!compiled.has(job.expression)) {
      compiled.set(job.expression, fhirpath.compile(job.expression, r4));
    }
    const result = compiled.get(job.expression)(job.resource, { resource: job.resource });
    console.log(JSON.stringify({ result }));
  } catch (error) {
    console.log(JSON.stringify({ error: String(error) }));
  }
}
