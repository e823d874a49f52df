// Every area's options, in the order --help, the manual pages and the README show them.
// To add an option: declare it in its area's file (or a new area file listed here) with a
// `field`, and add that field to Config (config.ts). See ../README.md.
import type { Area } from './area.js';
import { adminArea } from './admin.js';
import { cacheArea } from './cache.js';
import { encryptedArea } from './encrypted.js';
import { fleetArea } from './fleet.js';
import { forwardArea } from './forward.js';
import { groupsArea } from './groups.js';
import { guardArea } from './guard.js';
import { limitsArea } from './limits.js';
import { localArea } from './local.js';
import { netArea } from './net.js';
import { observeArea } from './observe.js';
import { policyArea } from './policy.js';
import { processArea } from './process.js';

export const AREAS: readonly Area[] = [processArea, netArea, forwardArea, encryptedArea, guardArea, limitsArea, policyArea, groupsArea, localArea, cacheArea, observeArea, adminArea, fleetArea];
