// The demo city's registry (synthetic, labelled: every source record id starts with "demo-"): the
// demo residents fused as public security's 户籍 records, and social insurance records for some of
// them — a few with a differently written name, so the steward queue has work. Once per database.
import { getSetting, setSetting } from '../../../db/index.ts';
import type { ModuleContext } from '../../../module.ts';
import { ingest } from '../fusion/index.ts';
import { populationRegistry } from './registry.ts';

const DONE = 'population.demoFused';
const BATCH = 5000;

export async function seedDemoRegistry(ctx: ModuleContext): Promise<number> {
  if (await getSetting<boolean>(ctx.db, DONE)) return 0;
  const reg = populationRegistry(ctx);
  let after = '';
  let fused = 0;
  for (;;) {
    const { rows } = await ctx.db.query<{ id_number: string; name: string; sex: string; ethnicity: string; birth_date: string; county_code: string; community_code: string | null; address: string }>(
      `select id_number, name, sex, ethnicity, to_char(birth_date, 'YYYY-MM-DD') as birth_date, county_code, community_code, address
         from population.person where synthetic and id_number > $1 order by id_number limit ${BATCH}`,
      [after],
    );
    if (!rows.length) break;
    // the rows are already in population.person: no projection
    const r = await ingest(
      ctx.db,
      reg,
      'ga-hukou',
      rows.map((p) => ({ recordId: `demo-hk-${p.id_number}`, idNumber: p.id_number, name: p.name, sex: p.sex, ethnicity: p.ethnicity, birthDate: p.birth_date, householdAddress: p.address, divisionCode: p.community_code ?? p.county_code, change: 'registered', changeDate: '2020-01-01' })),
    );
    fused += r.accepted;
    const insured = rows.filter((_, i) => i % 7 === 0);
    await ingest(
      ctx.db,
      reg,
      'rs-insurance',
      insured.map((p, i) => ({
        recordNo: `demo-rs-${p.id_number}`,
        idNumber: p.id_number,
        // one in fifty written differently at the social-insurance office: a conflict for the steward
        name: i % 50 === 0 ? [...p.name].slice(0, -1).join('') + ([...p.name].at(-1) === '华' ? '化' : '华') : p.name,
        employer: `苏州${['工业园区', '高新区', '吴中区', '相城区'][i % 4]}某${['科技', '制造', '商贸', '物流'][i % 4]}有限公司（合成）`,
        insured: true,
        changeDate: '2024-01-01',
      })),
    );
    after = rows.at(-1)!.id_number;
  }
  await setSetting(ctx.db, DONE, true);
  return fused;
}
