// How an answer goes back to a client: a UDP listener (address and port per answer) or one
// TCP connection (they are ignored). The resolver only sees this.
export interface Transport {
  readonly udp: boolean;
  send(answer: Buffer, address: string, port: number): void;
  /**
   * The message will get no answer (not a query, or dropped by a limit): a stream transport
   * stops waiting for one, so the connection counts as idle again.
   */
  unanswered?(): void;
}
