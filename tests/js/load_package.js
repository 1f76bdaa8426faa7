// Loads a FHIR package with fhir-package-loader (the loader SUSHI uses), offline, and prints one
// JSON line: the load status, the package.json the loader read, the resources it registered.
//
//   node load_package.js CACHE_DIR PACKAGE.tgz     the loader's own cache unpacks the .tgz into
//                                                  CACHE_DIR/<name>#<version>/, then loads it
//   node load_package.js CACHE_DIR NAME#VERSION    loads a package already in CACHE_DIR (the
//                                                  layout of ~/.fhir/packages)
//   node load_package.js CACHE_DIR SOURCE DEPENDENCY...
//                                                  then loads each dependency (a .tgz or a
//                                                  NAME#VERSION, as above) into the same set,
//                                                  as SUSHI does with package.json's
//                                                  dependencies, and says, for every canonical
//                                                  url in the FPL_RESOLVE environment variable
//                                                  (JSON list), which package's resource it
//                                                  resolves to, if any
//
// Offline by construction: the registry and build-server clients handed to the loader refuse
// every download (and record the attempt), and CACHE_DIR replaces ~/.fhir/packages. The loader
// loads only the package named; it does not resolve dependencies (SUSHI does that itself), so
// hl7.fhir.r4.core is neither downloaded nor needed.
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const fpl = require("fhir-package-loader");

const [cacheDir, source, ...dependencySources] = process.argv.slice(2);
if (!cacheDir || !source) {
  console.error("usage: node load_package.js CACHE_DIR (PACKAGE.tgz | NAME#VERSION)");
  process.exit(2);
}

const downloads = [];
const refuse = (what) => {
  downloads.push(what);
  return Promise.reject(new Error(`offline: refusing to download ${what}`));
};
const offlineRegistry = {
  resolveVersion: (name, version) =>
    /^\d+\.\d+\.\d+/.test(version) ? Promise.resolve(version) : refuse(`${name}#${version}`),
  download: (name, version) => refuse(`${name}#${version}`),
};
const offlineBuilds = {
  downloadCurrentBuild: (name, branch) => refuse(`${name}#current${branch ? "$" + branch : ""}`),
  getCurrentBuildDate: (name) => refuse(`${name}#current (date)`),
};

// package/package.json from the .tgz (ustar: 512-byte headers), to know the name and version.
function packageJsonOf(tgz) {
  const tar = zlib.gunzipSync(fs.readFileSync(tgz));
  const text = (start, length) =>
    tar.subarray(start, start + length).toString("utf8").replace(/\0[\s\S]*$/, "");
  for (let offset = 0; offset + 512 <= tar.length; ) {
    if (tar.subarray(offset, offset + 512).every((byte) => byte === 0)) break;
    const prefix = text(offset + 345, 155);
    const name = (prefix ? prefix + "/" : "") + text(offset, 100);
    const size = parseInt(text(offset + 124, 12).trim() || "0", 8);
    offset += 512;
    if (name === "package/package.json") {
      return JSON.parse(tar.subarray(offset, offset + size).toString("utf8"));
    }
    offset += Math.ceil(size / 512) * 512;
  }
  throw new Error(`no package/package.json in ${tgz}`);
}

async function main() {
  const messages = [];
  const log = (level, message) => messages.push(`${level}: ${message}`);
  const cache = new fpl.DiskBasedPackageCache(cacheDir, { log });
  const db = await fpl.createSQLJSPackageDB();
  const loader = new fpl.BasePackageLoader(db, cache, offlineRegistry, offlineBuilds, { log });

  async function load(from) {
    let name, version;
    if (from.endsWith(".tgz")) {
      ({ name, version } = packageJsonOf(from));
      await cache.cachePackageTarball(name, version, fs.createReadStream(from));
    } else {
      [name, version] = from.split("#");
    }
    return { name, version, status: await loader.loadPackage(name, version) };
  }
  const { name, version, status } = await load(source);
  const dependencies = [];
  for (const from of dependencySources) dependencies.push(await load(from));
  const resolve = JSON.parse(process.env.FPL_RESOLVE || "[]");
  const canonicals = {};
  for (const url of resolve) {
    const info = loader.findResourceInfo(url);
    canonicals[url] = info
      ? { resourceType: info.resourceType, id: info.id, package: `${info.packageName}#${info.packageVersion}` }
      : null;
  }

  const infos = loader
    .findResourceInfos("*", { scope: name })
    .map(({ resourceType, id, url, name: resourceName, version: resourceVersion, resourcePath }) => ({
      resourceType,
      id,
      url,
      name: resourceName,
      version: resourceVersion,
      file: resourcePath ? path.basename(resourcePath) : null,
    }))
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const counts = {};
  for (const info of infos) counts[info.resourceType] = (counts[info.resourceType] || 0) + 1;
  // Every resource found again by its canonical url, as SUSHI resolves references.
  const resolved = infos.filter((info) => {
    const found = info.url && loader.findResourceJSON(info.url, { scope: name });
    return found && found.resourceType === info.resourceType && found.id === info.id;
  }).length;

  console.log(
    JSON.stringify({
      status,
      package: loader.findPackageJSON(name, version) || null,
      loaded: loader.findPackageInfos("*").map((p) => `${p.name}#${p.version}`),
      packagePath: (loader.findPackageInfo(name, version) || {}).packagePath || null,
      counts,
      questionnaires: infos.filter((i) => i.resourceType === "Questionnaire").map((i) => i.url),
      resources: infos,
      resolvedByUrl: resolved,
      dependencies,
      canonicals,
      downloads,
      log: messages,
    }),
  );
}

main().catch((error) => {
  console.log(JSON.stringify({ error: String((error && error.stack) || error), downloads }));
  process.exit(1);
});
