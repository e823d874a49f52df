// `npm run docs`: writes the README's options block and docs/man/sinkhole.8 and
// sinkhole.conf.5 from the option and command declarations.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manSinkhole, manSinkholeConf, readmeBlock, withReadmeBlock } from '../config/docs.js';
import { APP_DIR } from '../config/paths.js';
import { COMMANDS, documented } from './commands/index.js';

const commands = COMMANDS.map(documented);
const readme = join(APP_DIR, 'README.md');
writeFileSync(readme, withReadmeBlock(readFileSync(readme, 'utf8'), readmeBlock(commands)));
mkdirSync(join(APP_DIR, 'docs', 'man'), { recursive: true });
writeFileSync(join(APP_DIR, 'docs', 'man', 'sinkhole.8'), manSinkhole(commands));
writeFileSync(join(APP_DIR, 'docs', 'man', 'sinkhole.conf.5'), manSinkholeConf());
console.log('wrote README.md (options block), docs/man/sinkhole.8, docs/man/sinkhole.conf.5');
