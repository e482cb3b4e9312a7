// Minimal QMP client over a unix socket (node:net). Test-side only.
import net from 'node:net';

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  readonly events: QmpEvent[] = [];
  greeting: unknown;
  private buf = '';
  private pending: Pending[] = [];
  private closed = false;
  private closeError: Error | undefined;
  private eventWaiters: Array<{ name: string; resolve: (e: QmpEvent) => void }> = [];

  private constructor(private readonly sock: net.Socket) {}

  /** Connect to `path`, retrying until the socket exists (QEMU creates it at startup). */
  static async connect(path: string, timeoutMs = 15_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        const c = new QmpClient(sock);
        await c.handshake();
        return c;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === 'ENOENT' || code === 'ECONNREFUSED') && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        throw e;
      }
    }
  }

  private async handshake(): Promise<void> {
    this.greeting = await new Promise<unknown>((resolve, reject) => {
      this.pending.push({ command: '(greeting)', resolve, reject });
      this.sock.setEncoding('utf8');
      this.sock.on('data', (d: string) => this.onData(d));
      this.sock.on('error', (e) => this.fail(e));
      this.sock.on('close', () => this.fail(new Error('QMP connection closed')));
    });
    await this.execute('qmp_capabilities');
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in msg) {
        const ev = msg as unknown as QmpEvent;
        this.events.push(ev);
        this.eventWaiters = this.eventWaiters.filter((w) => {
          if (w.name === ev.event) {
            w.resolve(ev);
            return false;
          }
          return true;
        });
        continue;
      }
      const p = this.pending.shift();
      if (!p) continue;
      if ('QMP' in msg) p.resolve(msg.QMP);
      else if ('return' in msg) p.resolve(msg.return);
      else if ('error' in msg) {
        const err = msg.error as { class?: string; desc?: string };
        p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? JSON.stringify(err)));
      } else p.reject(new Error(`QMP ${p.command}: unexpected reply ${line}`));
    }
  }

  /** Run a command; resolves with its `return` value, rejects with QmpError carrying QEMU's `desc`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(this.closeError ?? new Error('QMP closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ command, resolve: resolve as (v: unknown) => void, reject });
      const msg = args === undefined ? { execute: command } : { execute: command, arguments: args };
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  /** Wait for the next event named `name` (or return an already collected one when `past` is set). */
  waitEvent(name: string, timeoutMs = 30_000, past = false): Promise<QmpEvent> {
    if (past) {
      const ev = this.events.find((e) => e.event === name);
      if (ev) return Promise.resolve(ev);
    }
    return new Promise<QmpEvent>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout waiting for QMP event ${name}`)), timeoutMs);
      this.eventWaiters.push({
        name,
        resolve: (e) => {
          clearTimeout(t);
          resolve(e);
        },
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new Error('QMP closed'));
    }
    this.sock.destroy();
  }
}
