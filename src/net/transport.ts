// How an answer goes back to a client: a UDP listener (address and port per answer) or one
// TCP connection (they are ignored). The resolver only sees this.
export interface Transport {
  readonly udp: boolean;
  send(answer: Buffer, address: string, port: number): void;
}
