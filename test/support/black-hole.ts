/**
 * A TCP listener that accepts every connection and never sends a byte: a server behind a black
 * hole, as a hung host or a firewall that drops replies would look to a driver.
 */
import { createServer, type Server, type Socket } from 'node:net';

export class BlackHole {
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async open(): Promise<BlackHole> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    const hole = new BlackHole(server, address.port);
    return hole;
  }

  /** Connections accepted and still open. */
  get connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
