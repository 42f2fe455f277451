// Connects identity to the municipal CA (src/base/identity/ca) when the CA module is part of the
// platform: legal-person certificates for enterprise sign-in, and the master key (GUSU_MASTER_KEY or
// GUSU_DATA_DIR/master.key) that seals the identity secrets (signing keys, cookie keys, client
// secrets) at rest in platform.setting.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ModuleContext } from '../../../module.ts';
import { caContextFor, legalPersonCertificates } from '../ca/index.ts';
import type { SecretsSealer } from '../oidc/secrets.ts';
import { setEnterpriseVerifier } from './enterprise.ts';

const AAD = Buffer.from('gusu-identity:secrets:v1');

export function caPresent(ctx: Pick<ModuleContext, 'modules'>): boolean {
  return ctx.modules.some((m) => m.name === 'ca');
}

/** The master-key sealer for the identity secrets, when the CA (and so its master key) is there. */
export function masterKeySealer(ctx: ModuleContext): SecretsSealer | null {
  if (!caPresent(ctx)) return null;
  const master = caContextFor(ctx).master;
  return {
    name: `master-key:${master.id}`,
    seal(plain) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', master.key, iv);
      c.setAAD(AAD);
      const body = Buffer.concat([c.update(plain), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
    },
    open(sealed) {
      const buf = Buffer.from(sealed, 'base64');
      const d = createDecipheriv('aes-256-gcm', master.key, buf.subarray(0, 12));
      d.setAAD(AAD);
      d.setAuthTag(buf.subarray(12, 28));
      try {
        return Buffer.concat([d.update(buf.subarray(28)), d.final()]);
      } catch {
        throw new Error(`the identity secrets do not open under master key ${master.id}: restore the GUSU_MASTER_KEY or master.key they were sealed with`);
      }
    },
  };
}

/** After start-up: enterprise sign-in with legal-person certificates. */
export function installEnterpriseVerifier(ctx: ModuleContext): void {
  setEnterpriseVerifier(ctx, caPresent(ctx) ? legalPersonCertificates : null);
}
