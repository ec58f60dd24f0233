#!/usr/bin/env node
// `npm run setup:cuda [-- --from nuget|npm] [--dry-run]`: install ONNX Runtime's CUDA execution
// provider next to onnxruntime-node, at exactly the ONNX Runtime version that onnxruntime-node
// carries (provider libraries must match the runtime they plug into, version for version).
//
//  --from nuget (default)  onnxruntime-node's own installer fetches Microsoft.ML.OnnxRuntime.Gpu.Linux
//                          at the version its metadata pins (1.30.0 for onnxruntime-node 1.30.0):
//                          same release, same build as the bundled runtime. Needs CUDA 12 + cuDNN 9
//                          and access to the NuGet feed.
//  --from npm              for machines that reach only the npm registry: the npm package
//                          com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 ships the CUDA provider
//                          of ONNX Runtime 1.29.0 (built for CUDA 13), so onnxruntime-node is pinned
//                          to 1.29.0 for this install (npm install --no-save; `npm ci` restores the
//                          locked version) and the two provider libraries are checked by SHA-256.
//                          Needs CUDA 13 + cuDNN 9 for CUDA 13.
// Then `evovla doctor` says whether the CUDA provider loads.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The npm-only source: package, the ONNX Runtime it carries, and its provider libraries. */
const NPM_SOURCE = {
  package: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  version: '0.4.9',
  ortVersion: '1.29.0',
  cuda: '13',
  folder: 'package/Plugins/Linux/x64',
  sha256: {
    'libonnxruntime_providers_cuda.so': '56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037',
    'libonnxruntime_providers_shared.so': 'c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772',
  },
};

const USAGE = 'usage: npm run setup:cuda [-- --from nuget|npm] [--dry-run]';

function parse(argv) {
  const o = { from: 'nuget', dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dry-run') o.dryRun = true;
    else if (a === '--from' || a.startsWith('--from=')) {
      o.from = a.includes('=') ? a.slice(7) : argv[++i];
      if (o.from !== 'nuget' && o.from !== 'npm') throw new Error(`--from: expected 'nuget' or 'npm', got '${o.from}'\n${USAGE}`);
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${a}'\n${USAGE}`);
  }
  return o;
}

function ortInfo() {
  const require = createRequire(join(ROOT, 'package.json'));
  const pkgFile = require.resolve('onnxruntime-node/package.json');
  const dir = dirname(pkgFile);
  const version = JSON.parse(readFileSync(pkgFile, 'utf8')).version;
  const meta = join(dir, 'script', 'install-metadata-versions.js');
  const nuget = existsSync(meta) ? require(meta).nuget?.map((v) => v.version) : [];
  return { dir, version, nuget, bin: join(dir, 'bin', 'napi-v6', process.platform, process.arch) };
}

function run(cmd, args, env = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  execFileSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function main() {
  const o = parse(process.argv.slice(2));
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the CUDA provider is set up here for linux/x64 only; this is ${process.platform}/${process.arch}`);
  const ort = ortInfo();
  const plan =
    o.from === 'nuget'
      ? [
          `onnxruntime-node ${ort.version}: its installer fetches Microsoft.ML.OnnxRuntime.Gpu.Linux ${ort.nuget.join(', ')} (CUDA 12, cuDNN 9)`,
          `into ${ort.bin}`,
        ]
      : [
          `pin onnxruntime-node ${NPM_SOURCE.ortVersion} (npm install --no-save; it is ${ort.version} now)`,
          `copy ${Object.keys(NPM_SOURCE.sha256).join(', ')} from ${NPM_SOURCE.package}@${NPM_SOURCE.version} (ONNX Runtime ${NPM_SOURCE.ortVersion}, CUDA ${NPM_SOURCE.cuda}), SHA-256 checked`,
          `into ${ort.bin}`,
        ];
  console.log(`setup:cuda from ${o.from}:\n  ${plan.join('\n  ')}`);
  if (o.from === 'nuget' && !ort.nuget.includes(ort.version)) {
    throw new Error(`onnxruntime-node ${ort.version}'s installer pins provider version(s) ${ort.nuget.join(', ')}, not ${ort.version}: refusing a mismatched provider`);
  }
  if (o.dryRun) return;

  if (o.from === 'nuget') {
    run(process.execPath, [join(ort.dir, 'script', 'install.js')], { ONNXRUNTIME_NODE_INSTALL: 'cuda12' });
  } else {
    if (ort.version !== NPM_SOURCE.ortVersion) {
      run('npm', ['install', '--no-save', '--no-audit', '--no-fund', `onnxruntime-node@${NPM_SOURCE.ortVersion}`], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    }
    const now = ortInfo();
    if (now.version !== NPM_SOURCE.ortVersion) throw new Error(`onnxruntime-node is ${now.version} after the install, expected ${NPM_SOURCE.ortVersion}`);
    const tmp = mkdtempSync(join(tmpdir(), 'evovla-cuda-'));
    try {
      run('npm', ['pack', '--silent', '--pack-destination', tmp, `${NPM_SOURCE.package}@${NPM_SOURCE.version}`]);
      const tgz = join(tmp, `${NPM_SOURCE.package}-${NPM_SOURCE.version}.tgz`);
      const files = Object.keys(NPM_SOURCE.sha256).map((f) => `${NPM_SOURCE.folder}/${f}`);
      run('tar', ['-xzf', tgz, '-C', tmp, ...files]);
      for (const [name, want] of Object.entries(NPM_SOURCE.sha256)) {
        const src = join(tmp, NPM_SOURCE.folder, name);
        const got = sha256(src);
        if (got !== want) throw new Error(`${name} from ${NPM_SOURCE.package}@${NPM_SOURCE.version} has SHA-256 ${got}, expected ${want}`);
        // Copy beside, then rename: a half-copied provider library never sits under its real name.
        const dst = join(now.bin, name);
        copyFileSync(src, `${dst}.tmp`);
        renameSync(`${dst}.tmp`, dst);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const lib = join(ortInfo().bin, 'libonnxruntime_providers_cuda.so');
  if (!existsSync(lib)) throw new Error(`the install finished but ${lib} is missing`);
  console.log(`installed ${lib}\nnext: npx evovla doctor   (says whether the CUDA provider loads on this machine's driver, CUDA and cuDNN)`);
}

try {
  main();
} catch (err) {
  console.error(`setup:cuda: ${err.message}`);
  process.exit(1);
}
