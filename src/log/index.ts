// Structured logs: one JSON object a line (pino), on stderr, so stdout stays free for the one
// ready line scripts wait for. Every S3 request line carries its `reqId`, the same id the client
// got in `x-amz-request-id`, so a client-side failure can be found in the log.
import pino from 'pino';

export type Logger = pino.Logger;

export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LEVELS)[number];

export function parseLevel(text: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  if (text === undefined || text === '') return fallback;
  const l = text.toLowerCase();
  if (!(LEVELS as readonly string[]).includes(l)) throw new Error(`log level must be one of ${LEVELS.join(', ')}; got '${text}'`);
  return l as LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  // A file descriptor or stream; stderr by default.
  destination?: number | NodeJS.WritableStream;
  base?: Record<string, unknown>;
}

export function createLogger(o: LoggerOptions = {}): Logger {
  // Asynchronous writes (sonic-boom) keep a slow log reader from stalling request handling;
  // flushLogger writes what is buffered before the process exits.
  const dest = typeof o.destination === 'object' ? o.destination : pino.destination({ dest: o.destination ?? 2, sync: false });
  return pino({
    level: o.level ?? 'info',
    base: { pid: process.pid, ...o.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, dest as pino.DestinationStream);
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A closed destination: nothing left to write.
  }
}

// A logger that drops everything: the default where none is given (tests, library use).
export const silentLogger: Logger = pino({ level: 'silent' });
