// The demo city's notices (GUSU_DEMO on), seeded once per database and marked synthetic: two
// department templates (高龄津贴申领提醒 from 市民政局, 医保缴费提醒 from 市医保局), a welcome
// notice and a payment reminder in the demo resident's mailbox, and one segment notice (residents of
// 平江街道 aged 60 and over) sent through the real background path.
import { getSetting, setSetting } from '../../db/index.ts';
import type { ModuleContext } from '../../module.ts';
import { demoAccounts } from '../identity/index.ts';
import { sendNotice, submitNotice } from './notices.ts';
import { saveTemplate, type TemplateInput } from './templates.ts';

const SETTING = 'messaging.demo';

export const DEMO_TEMPLATES: { department: string; template: TemplateInput }[] = [
  {
    department: 'SZ-MZ',
    template: {
      key: 'elderly-allowance-reminder',
      name: { zh: '高龄津贴申领提醒', en: 'Old-age allowance reminder' },
      subject: { zh: '高龄津贴申领提醒', en: 'Apply for your old-age allowance' },
      body: {
        zh: '尊敬的{{name}}：\n\n本市向符合条件的老年人按月发放高龄津贴。您所在的{{street}}已开始受理本年度申领，请于{{deadline}}前携带身份证件到所在社区服务站办理，也可在“中国苏州”门户“在线办事”中申请。\n\n如已办理，请忽略本通知。\n\n{{department}}\n{{date}}\n\n（合成演示数据，并非真实通知。）',
        en: 'Dear {{name}},\n\nThe city pays a monthly allowance to eligible older residents. {{street}} is now taking this year’s applications: please apply by {{deadline}} at your community service station with your ID card, or online under Services on the China Suzhou portal.\n\nIf you have applied already, please ignore this notice.\n\n{{department}}\n{{date}}\n\n(Synthetic demo data, not a real notice.)',
      },
      variables: ['deadline'],
    },
  },
  {
    department: 'SZ-YB',
    template: {
      key: 'medical-insurance-reminder',
      name: { zh: '医保缴费提醒', en: 'Medical insurance payment reminder' },
      subject: { zh: '{{year}}年度城乡居民医保缴费提醒', en: 'Residents’ medical insurance for {{year}}: time to pay' },
      body: {
        zh: '{{name}}您好：\n\n{{year}}年度城乡居民基本医疗保险集中缴费期将于{{deadline}}结束。请通过税务部门缴费渠道或“中国苏州”门户按时缴纳，以免影响来年的医保待遇。\n\n{{department}}\n\n（合成演示数据，并非真实通知。）',
        en: 'Hello {{name}},\n\nThe payment period for residents’ basic medical insurance for {{year}} ends on {{deadline}}. Please pay through the tax service’s channels or the China Suzhou portal in time, so that next year’s cover is not affected.\n\n{{department}}\n\n(Synthetic demo data, not a real notice.)',
      },
      variables: ['year', 'deadline'],
    },
  },
];

export async function seedDemoNotices(ctx: ModuleContext): Promise<void> {
  if (await getSetting(ctx.db, SETTING)) return;
  const demo = await demoAccounts(ctx.db);
  await ctx.db.tx(async (c) => {
    await c.query('select pg_advisory_xact_lock(7110442)');
    if (await getSetting(c, SETTING)) return;
    const known = new Set(ctx.profile.departments.map((d) => d.code));
    for (const { department, template } of DEMO_TEMPLATES) if (known.has(department)) await saveTemplate(c, department, 'messaging-demo', template, { synthetic: true });
    const resident = demo?.resident?.idNumber;
    const year = new Date().getFullYear();
    const deadline = `${year}年12月31日`;
    if (resident && known.has('SZ-DSJ')) {
      await sendNotice(c, {
        from: { department: 'SZ-DSJ', system: 'messaging-demo' },
        to: { idNumber: resident },
        subject: { zh: '欢迎使用实名制市民信箱', en: 'Welcome to your real-name mailbox' },
        body: {
          zh: '{{name}}您好：\n\n政府各部门和公共事业单位发给您本人的通知，都会送到这个信箱。如需同时收到短信或电子邮件，请在“短信和电子邮件通知设置”中填写号码和地址，并在个人设置中选择通知方式。\n\n（合成演示数据。）',
          en: 'Hello {{name}},\n\nNotices that government departments and public utilities address to you arrive in this mailbox. To get them by SMS or email as well, give your number and address under “SMS and email settings” and choose the channels in your preferences.\n\n(Synthetic demo data.)',
        },
        synthetic: true,
      });
    }
    if (resident && known.has('SZ-YB')) {
      await sendNotice(c, { from: { department: 'SZ-YB', system: 'messaging-demo' }, to: { idNumber: resident }, template: 'medical-insurance-reminder', vars: { year: String(year + 1), deadline }, synthetic: true });
    }
    // 平江街道 (姑苏区) when the profile has it: the segment example of the issue
    if (known.has('SZ-MZ') && ctx.profile.divisions.some((d) => d.children.some((s) => s.code === '320508018'))) {
      await submitNotice(
        c,
        { department: 'SZ-MZ', kind: 'system', id: 'messaging-demo' },
        { template: 'elderly-allowance-reminder', vars: { deadline }, audience: { kind: 'segment', divisions: ['320508018'], minAge: 60 } },
        {},
        { synthetic: true },
      );
    }
    await setSetting(c, SETTING, { seededAt: new Date().toISOString(), notice: 'Synthetic demo notices and templates' });
  });
}
