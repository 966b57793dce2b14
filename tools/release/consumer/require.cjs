// CommonJS consumers: Node 20.19+ loads our ES modules with require().
// Usage: node require.cjs <package> <export>…
const [name, ...names] = process.argv.slice(2);
const loaded = require(name);
const missing = names.filter((n) => loaded[n] === undefined);
if (missing.length > 0) {
  console.error(`require(${name}) lacks ${missing.join(', ')}`);
  process.exit(1);
}
console.log(`require(${name}): ok (${Object.keys(loaded).length} exports)`);
