// Where browsers find the two faces, and so the OpenID provider's issuer and the clients' redirect
// URIs. GUSU_PUBLIC_URL / GUSU_INTERNAL_URL when set (behind a reverse proxy, https); otherwise the
// listeners' own addresses: http://HOST:PORT (one port for both faces) or PUBLIC_PORT/INTERNAL_PORT.
import type { Config } from '../../../config/index.ts';

export interface PlatformUrls {
  /** the public face (portal), no trailing slash */
  public: string;
  /** the internal face (console) */
  internal: string;
  /** the OpenID provider: `${public}/oidc` */
  issuer: string;
}

function hostPart(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** localPort: the port a listener actually got, when PORT=0 asked for any free one. */
export function platformUrls(config: Pick<Config, 'host' | 'port' | 'publicPort' | 'internalPort' | 'publicUrl' | 'internalUrl'>, localPort?: number): PlatformUrls {
  const h = hostPart(config.host);
  const onePort = config.port === 0 && localPort ? localPort : config.port;
  const pub = config.publicUrl ?? `http://${h}:${config.publicPort ?? onePort}`;
  const internal = config.internalUrl ?? (config.internalPort !== null ? `http://${h}:${config.internalPort}` : pub);
  return { public: pub, internal, issuer: `${pub}/oidc` };
}

export const isHttps = (url: string) => url.startsWith('https:');

export function originOf(url: string): string {
  return new URL(url).origin;
}
