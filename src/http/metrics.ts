// Prometheus metrics: one registry per process, shared by every listener and the job worker.
import client from 'prom-client';

export interface Metrics {
  registry: client.Registry;
  httpDuration: client.Histogram<'method' | 'route' | 'status'>;
  jobs: client.Histogram<'kind' | 'outcome'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'gusu_' });
  const httpDuration = new client.Histogram({
    name: 'gusu_http_request_duration_seconds',
    help: 'HTTP request duration by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const jobs = new client.Histogram({
    name: 'gusu_job_duration_seconds',
    help: 'Background job run time by kind and outcome (done, retry, dead)',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [registry],
  });
  return { registry, httpDuration, jobs };
}

/** Adds a gauge computed at scrape time (e.g. queue depth read from the database). */
export function addGauge(m: Metrics, name: string, help: string, labelNames: string[], collect: () => Promise<{ labels?: Record<string, string>; value: number }[]>) {
  new client.Gauge({
    name,
    help,
    labelNames,
    registers: [m.registry],
    async collect() {
      this.reset();
      for (const { labels, value } of await collect().catch(() => [])) {
        if (labels) this.set(labels, value);
        else this.set(value);
      }
    },
  });
}
