import type { Route } from '../context.ts';
import type { Metrics } from '../metrics.ts';
import { sendJSON } from '../respond.ts';

export interface OpsDeps {
  metrics: Metrics;
  /** Resolves when the stores answer; rejects otherwise. */
  ready: () => Promise<void>;
  /** Start-up has finished (the first admin exists, background jobs run): until then not ready. */
  started: () => boolean;
  /** True once shutdown began: readiness fails so load balancers drain this instance. */
  draining: () => boolean;
}

/** `/healthz` (process alive), `/readyz` (stores reachable, not draining), `/metrics` (Prometheus). */
export function opsRoutes(deps: OpsDeps): Route[] {
  return [
    { name: 'healthz', methods: ['GET', 'HEAD'], pattern: /^\/healthz$/, handler: async (ctx) => sendJSON(ctx.res, 200, { status: 'ok' }) },
    {
      name: 'readyz',
      methods: ['GET', 'HEAD'],
      pattern: /^\/readyz$/,
      handler: async (ctx) => {
        if (deps.draining()) return sendJSON(ctx.res, 503, { status: 'draining' });
        if (!deps.started()) return sendJSON(ctx.res, 503, { status: 'starting' });
        try {
          await deps.ready();
          sendJSON(ctx.res, 200, { status: 'ready' });
        } catch (err) {
          ctx.log.error({ err }, 'readiness check failed');
          sendJSON(ctx.res, 503, { status: 'unavailable' });
        }
      },
    },
    {
      name: 'metrics',
      methods: ['GET'],
      pattern: /^\/metrics$/,
      handler: async (ctx) => {
        const text = await deps.metrics.registry.metrics();
        ctx.res.writeHead(200, { 'Content-Type': deps.metrics.registry.contentType, 'Content-Length': Buffer.byteLength(text) });
        ctx.res.end(text);
      },
    },
  ];
}
