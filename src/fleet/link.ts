// The connection to Redis: one client for commands, one for subscriptions (a subscribed
// connection can do nothing else). Commands fail at once while Redis is away (no offline
// queue: nothing waits on Redis), the client reconnects with a capped backoff, and the
// outage is logged once, not once per retry.
import { readFileSync } from 'node:fs';
import { createClient, RESP_TYPES } from 'redis';
import type { Logger } from '../observe/log.js';

export interface LinkOptions {
  url: string;
  passwordFile: string | null;
  ca: string | null;
  /** The longest wait between reconnection attempts. */
  maxBackoffMs?: number;
}

export type RedisArg = string | Buffer;

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

export class RedisLink {
  private readonly client;
  private readonly sub;
  private readonly label: string;
  private down = false;
  private closed = false;
  /** Called every time both connections are ready again (catch up). */
  private readonly readyListeners: (() => void)[] = [];
  connects = 0;

  constructor(options: LinkOptions, private readonly log: Logger) {
    this.label = redactUrl(options.url);
    const password = options.passwordFile === null ? undefined : readPassword(options.passwordFile);
    const maxBackoff = options.maxBackoffMs ?? 2000;
    const tls = options.url.startsWith('rediss:');
    const socket = {
      connectTimeout: 2000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxBackoff),
      ...(tls ? { tls: true as const, ...(options.ca === null ? {} : { ca: readFileSync(options.ca) }) } : {}),
    };
    this.client = createClient({ url: options.url, ...(password === undefined ? {} : { password }), socket, disableOfflineQueue: true });
    this.sub = this.client.duplicate();
    for (const [c, role] of [[this.client, 'commands'], [this.sub, 'subscriber']] as const) {
      c.on('error', (err: Error) => this.lost(err, role));
      c.on('ready', () => this.maybeReady());
    }
  }

  get connected(): boolean {
    return this.client.isReady && this.sub.isReady;
  }

  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  /** Starts connecting; resolves when connected or after `waitMs`, whichever is first (never rejects). */
  async start(waitMs: number): Promise<boolean> {
    void this.client.connect().catch(() => undefined);
    void this.sub.connect().catch(() => undefined);
    const until = Date.now() + waitMs;
    while (!this.connected && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    if (!this.connected && !this.down) {
      this.down = true;
      this.log.warn({ redis: this.label }, `Redis at ${this.label} unreachable; serving the last applied policy and retrying in the background`);
    }
    return this.connected;
  }

  private lost(err: Error, role: string): void {
    if (this.closed || this.down) return;
    this.down = true;
    this.log.warn({ redis: this.label, connection: role, reason: err.message || (err as NodeJS.ErrnoException).code },
      `Redis at ${this.label} unreachable (${err.message || (err as NodeJS.ErrnoException).code}); serving on, retrying in the background`);
  }

  private maybeReady(): void {
    if (!this.connected) return;
    this.connects++;
    if (this.down) this.log.info({ redis: this.label }, `Redis at ${this.label} reachable again; catching up`);
    this.down = false;
    void this.subscribePending().finally(() => {
      for (const l of this.readyListeners) l();
    });
  }

  /** One command; rejects at once while Redis is unreachable. */
  send<T = unknown>(args: readonly RedisArg[]): Promise<T> {
    return this.client.sendCommand<T>(args);
  }

  /** One command whose bulk replies come back as Buffers (file contents, packed answers). */
  sendForBuffers<T = unknown>(args: readonly RedisArg[]): Promise<T> {
    return this.client.sendCommand<T>(args, { typeMapping: BUFFERS });
  }

  /** Commands run as one MULTI/EXEC transaction: all or none. */
  async transaction(commands: readonly (readonly RedisArg[])[]): Promise<unknown[]> {
    const multi = this.client.multi();
    for (const c of commands) multi.addCommand([...c]);
    return (await multi.exec()) as unknown[];
  }

  /**
   * Subscribes now if connected, else as soon as the connection is ready (a subscribe sent
   * while Redis is away would wait for it). node-redis renews subscriptions after a reconnect.
   */
  subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    return this.whenSubscribable(() => this.sub.subscribe(channel, (message: string) => listener(message)));
  }

  /** A subscription whose messages come as Buffers (binary payloads). */
  subscribeBuffers(channel: string, listener: (message: Buffer) => void): Promise<void> {
    return this.whenSubscribable(() => this.sub.subscribe(channel, (message: Buffer) => listener(message), true));
  }

  private pendingSubscriptions: (() => Promise<void>)[] = [];

  private async whenSubscribable(subscribe: () => Promise<void>): Promise<void> {
    if (!this.connected) {
      this.pendingSubscriptions.push(subscribe);
      return;
    }
    await subscribe().catch(() => this.pendingSubscriptions.push(subscribe));
  }

  private async subscribePending(): Promise<void> {
    const pending = this.pendingSubscriptions;
    this.pendingSubscriptions = [];
    for (const subscribe of pending) await subscribe().catch(() => this.pendingSubscriptions.push(subscribe));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [this.sub, this.client]) {
      // A client that is reconnecting is open but not ready: destroy it rather than wait.
      if (c.isReady) await c.close().catch(() => undefined);
      else if (c.isOpen) c.destroy();
    }
  }
}

function readPassword(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the Redis password from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check the path and its permissions`);
  }
}
