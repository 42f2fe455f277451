// `gusu demo-accounts [sign TEXT]`: the demo accounts with their current TOTP codes, and a signer for
// the demo enterprise's certificate sign-in (it signs the "text to sign" of the login page with the
// demo legal person's key and prints the Base64 signature to paste back).
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../../config/index.ts';
import { findRunningEmbedded, openDatabase } from '../../../db/index.ts';
import { UsageError, type Command } from '../../../module.ts';
import { signWithCertificateKey } from '../ca/index.ts';
import { demoAccounts, demoAccountsSummary, type DemoAccounts } from './demo.ts';

async function readDemo(config: Config): Promise<{ demo: DemoAccounts | undefined; lines: string[] }> {
  if (!config.databaseUrl && !findRunningEmbedded(path.resolve(config.dataDir)) && !fs.existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
    throw new Error(`there is no embedded database in ${config.dataDir}: set GUSU_DATA_DIR to the platform's data directory, or DATABASE_URL`);
  }
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1, attach: true, applicationName: 'gusu-demo-accounts' });
  try {
    const exists = await database.db.query(`select to_regclass('platform.setting') as t`);
    if (!exists.rows[0]?.t) return { demo: undefined, lines: [] };
    return { demo: await demoAccounts(database.db), lines: await demoAccountsSummary({ db: database.db, config }) };
  } finally {
    await database.close();
  }
}

export const demoAccountsCommand: Command = {
  summary: 'show the demo accounts with their current TOTP codes, or sign an enterprise login challenge',
  usage: "gusu demo-accounts\n       gusu demo-accounts sign 'gusu-login:v1|...'",
  async run(args, config) {
    const [sub, ...rest] = args;
    if (sub === undefined) {
      const { lines } = await readDemo(config);
      if (!lines.length) {
        process.stdout.write('no demo accounts in this database (they are created on the first start with GUSU_DEMO on)\n');
        return 1;
      }
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    }
    if (sub === 'sign') {
      const text = rest.join(' ').trim();
      if (!text.startsWith('gusu-login:v1|')) throw new UsageError('sign expects the “text to sign” shown on the enterprise sign-in page (it starts with gusu-login:v1|)');
      const { demo } = await readDemo(config);
      if (!demo?.enterprise) {
        process.stdout.write('no demo enterprise in this database (the CA module issues its certificate on the first start)\n');
        return 1;
      }
      const { signature } = signWithCertificateKey(demo.enterprise.privateKey, text);
      process.stdout.write(`certificate (paste into “Certificate”):\n${demo.enterprise.certificate.trim()}\n\nsignature (paste into “Signature”):\n${signature.toString('base64')}\n`);
      return 0;
    }
    throw new UsageError(`unknown demo-accounts command ${JSON.stringify(sub)}: expects nothing or sign TEXT`);
  },
};
