// The Prometheus registry, the S3 operation names, the FUSE hook and the S3 observer (request
// counts, wire bytes, one JSON log line per request with its id).
import { createServer, request, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, parseLevel } from '../../src/log/index.ts';
import { StitchMetrics } from '../../src/metrics/index.ts';
import { Registry } from '../../src/metrics/registry.ts';
import { s3Operation } from '../../src/metrics/s3-ops.ts';

describe('registry', () => {
  it('renders counters, gauges and collected families in the text format', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'Things\nthat happened', ['op', 'status']);
    c.inc({ op: 'Get', status: '200' });
    c.inc({ op: 'Get', status: '200' }, 2);
    c.inc({ op: 'we"ird\\op\nname', status: '500' });
    c.inc({ op: 'Get', status: '200' }, -5); // counters never go down
    const g = r.gauge('y', 'A level');
    g.set(undefined, 1.5);
    r.collected('counter', 'z_total', 'From elsewhere', ['peer'], () => [[{ peer: 'a' }, 7], [{ peer: 'b' }, Infinity]]);
    r.collected('gauge', 'broken', 'A collector that throws', [], () => {
      throw new Error('gone');
    });
    expect(r.render()).toBe([
      '# HELP x_total Things\\nthat happened',
      '# TYPE x_total counter',
      'x_total{op="Get",status="200"} 3',
      'x_total{op="we\\"ird\\\\op\\nname",status="500"} 1',
      '# HELP y A level',
      '# TYPE y gauge',
      'y 1.5',
      '# HELP z_total From elsewhere',
      '# TYPE z_total counter',
      'z_total{peer="a"} 7',
      'z_total{peer="b"} +Inf',
      '# HELP broken A collector that throws',
      '# TYPE broken gauge',
      '',
    ].join('\n'));
  });

  it('renders histograms with cumulative buckets, +Inf, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('lat_seconds', 'Latency', ['op'], [0.1, 1, 0.01]);
    for (const v of [0.005, 0.05, 0.5, 5, NaN]) h.observe({ op: 'read' }, v);
    expect(r.render().split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'lat_seconds_bucket{op="read",le="0.01"} 1',
      'lat_seconds_bucket{op="read",le="0.1"} 2',
      'lat_seconds_bucket{op="read",le="1"} 3',
      'lat_seconds_bucket{op="read",le="+Inf"} 4',
      'lat_seconds_sum{op="read"} 5.555',
      'lat_seconds_count{op="read"} 4',
      '',
    ]);
  });

  it('refuses bad names and bounds the number of series', () => {
    const r = new Registry();
    expect(() => r.counter('bad-name', 'x')).toThrow();
    expect(() => r.counter('ok', 'x', ['le'])).toThrow();
    const c = r.counter('many_total', 'x', ['id']);
    for (let i = 0; i < 5000; i++) c.inc({ id: String(i) });
    expect(c.entries()).toHaveLength(1000);
    expect(() => r.counter('many_total', 'again')).toThrow(/twice/);
  });
});

describe('S3 operation names', () => {
  const cases: Array<[string, string, string, boolean?]> = [
    ['GET', '/', 'ListBuckets'],
    ['PUT', '/b', 'CreateBucket'],
    ['PUT', '/b/', 'CreateBucket'],
    ['HEAD', '/b', 'HeadBucket'],
    ['DELETE', '/b', 'DeleteBucket'],
    ['GET', '/b?list-type=2&prefix=x', 'ListObjectsV2'],
    ['GET', '/b', 'ListObjects'],
    ['GET', '/b?versions', 'ListObjectVersions'],
    ['GET', '/b?location', 'GetBucketLocation'],
    ['GET', '/b?versioning', 'GetBucketVersioning'],
    ['PUT', '/b?versioning', 'PutBucketVersioning'],
    ['GET', '/b?uploads', 'ListMultipartUploads'],
    ['POST', '/b?delete', 'DeleteObjects'],
    ['GET', '/b/k/ey', 'GetObject'],
    ['HEAD', '/b/k', 'HeadObject'],
    ['PUT', '/b/k', 'PutObject'],
    ['PUT', '/b/k', 'CopyObject', true],
    ['DELETE', '/b/k', 'DeleteObject'],
    ['POST', '/b/k?uploads', 'CreateMultipartUpload'],
    ['PUT', '/b/k?partNumber=1&uploadId=u', 'UploadPart'],
    ['PUT', '/b/k?partNumber=1&uploadId=u', 'UploadPartCopy', true],
    ['POST', '/b/k?uploadId=u', 'CompleteMultipartUpload'],
    ['DELETE', '/b/k?uploadId=u', 'AbortMultipartUpload'],
    ['GET', '/b/k?uploadId=u', 'ListParts'],
    ['GET', '/b/k?acl', 'Unsupported'],
    ['PATCH', '/b/k', 'Other'],
  ];
  it.each(cases)('%s %s is %s', (method, url, op, copy) => {
    expect(s3Operation({ method, url, copySource: copy })).toBe(op);
  });

  it('reads virtual-host-style requests', () => {
    expect(s3Operation({ method: 'GET', url: '/', host: 'photos.localhost:9000', domains: ['localhost'] })).toBe('ListObjects');
    expect(s3Operation({ method: 'GET', url: '/k', host: 'photos.localhost:9000', domains: ['localhost'] })).toBe('GetObject');
    expect(s3Operation({ method: 'GET', url: '/', host: 'localhost:9000', domains: ['localhost'] })).toBe('ListBuckets');
  });
});

describe('StitchMetrics', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('counts FUSE operations by name and result, folding odd names into `other`', () => {
    const m = new StitchMetrics();
    m.fuseOp('read', 2, true);
    m.fuseOp('read', 4, true);
    m.fuseOp('write', 1, false);
    m.fuseOp('Bad Name!', 1, true);
    const text = m.render();
    expect(text).toMatch(/^stitch_fuse_operations_total\{op="read",result="ok"\} 2$/m);
    expect(text).toMatch(/^stitch_fuse_operations_total\{op="write",result="error"\} 1$/m);
    expect(text).toMatch(/^stitch_fuse_operations_total\{op="other",result="ok"\} 1$/m);
    expect(text).toMatch(/^stitch_fuse_operation_duration_seconds_sum\{op="read"\} 0\.006$/m);
    m.close();
  });

  it('observes S3 requests: operation, status, wire bytes, and a log line with the request id', async () => {
    const m = new StitchMetrics();
    const lines: string[] = [];
    const log = createLogger({ destination: new Writable({ write: (c, _e, cb) => { lines.push(String(c)); cb(); } }) });
    const obs = m.s3Observer({ domains: ['localhost'], log });
    let n = 0;
    // Stands in for S3Server: sets the request id first, answers, then reports like onRequest.
    server = createServer((req, res) => {
      const id = `REQ${++n}`;
      res.setHeader('x-amz-request-id', id);
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const status = req.method === 'PUT' ? 200 : 404;
        res.writeHead(status, { 'content-length': 1000 });
        res.end(Buffer.alloc(1000), () => obs.onRequest({ id, method: req.method!, path: req.url!.split('?')[0], status, ms: 12.5, code: status === 404 ? 'NoSuchKey' : undefined }));
      });
    });
    obs.attach(server);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const send = (method: string, path: string, body?: Buffer) => new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: body ? { 'content-length': body.length } : {} }, (res) => {
        res.resume();
        res.on('end', () => setTimeout(resolve, 20));
      });
      req.on('error', reject);
      req.end(body);
    });
    await send('PUT', '/b/k', Buffer.alloc(50_000));
    await send('GET', '/b/missing');
    const text = m.render();
    expect(text).toMatch(/^stitch_s3_requests_total\{op="PutObject",status="200"\} 1$/m);
    expect(text).toMatch(/^stitch_s3_requests_total\{op="GetObject",status="404"\} 1$/m);
    const bytesIn = Number(text.match(/^stitch_s3_received_bytes_total\{op="PutObject"\} (\d+)$/m)![1]);
    expect(bytesIn).toBeGreaterThan(50_000);
    expect(bytesIn).toBeLessThan(51_000);
    expect(Number(text.match(/^stitch_s3_sent_bytes_total\{op="GetObject"\} (\d+)$/m)![1])).toBeGreaterThan(1000);
    expect(m.s3Totals().requests).toBe(2);
    log.flush();
    await new Promise((r) => setTimeout(r, 50));
    const logged = lines.join('').trim().split('\n').map((l) => JSON.parse(l));
    expect(logged).toEqual([
      expect.objectContaining({ level: 'info', reqId: 'REQ1', op: 'PutObject', method: 'PUT', path: '/b/k', status: 200, ms: 12.5 }),
      expect.objectContaining({ level: 'info', reqId: 'REQ2', op: 'GetObject', status: 404, code: 'NoSuchKey' }),
    ]);
    m.close();
  });

  it('parses log levels', () => {
    expect(parseLevel(undefined)).toBe('info');
    expect(parseLevel('DEBUG')).toBe('debug');
    expect(() => parseLevel('loud')).toThrow(/log level/);
  });
});
