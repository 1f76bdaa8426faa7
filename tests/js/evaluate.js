// Evaluates FHIRPath with fhirpath.js (the engine of LHC-Forms): one JSON job per input line,
// {"resource": QR, "expression": "..."}, one JSON result per output line.
const fhirpath = require("fhirpath");
const r4 = require("fhirpath/fhir-context/r4");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
for (const line of lines) {
  const job = JSON.parse(line);
  try {
    const result = fhirpath.evaluate(job.resource, job.expression, { resource: job.resource }, r4);
    console.log(JSON.stringify({ result }));
  } catch (error) {
    console.log(JSON.stringify({ error: String(error) }));
  }
}
