// Mozilla's DNS-over-HTTPS canary: when a resolver answers NXDOMAIN for this name, Firefox
// keeps using it instead of switching to its own DoH resolver, which would walk around the
// blocklists. Always answered NXDOMAIN.
import { mustKey } from '../../wire/names.js';

export const CANARY_DOMAIN = 'use-application-dns.net';
export const CANARY_KEY = mustKey(CANARY_DOMAIN);
