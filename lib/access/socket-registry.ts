/**
 * The sockets of one node's connections, connecting ones included: the drivers take their
 * socket from a factory shardkit passes in the connection settings (pg's and mysql2's `stream`
 * option), so close() can destroy every one of them, and a process whose server stopped
 * answering exits instead of waiting for TCP to give up.
 */
import type { Socket } from 'node:net';

export class SocketRegistry {
  private readonly sockets = new Set<Socket>();

  track<T extends Socket>(socket: T): T {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  }

  get open(): number {
    return this.sockets.size;
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
