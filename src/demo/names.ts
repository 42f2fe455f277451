// Word lists for the synthetic demo city. Frequencies are approximate and rounded: good enough for
// data that looks like Suzhou's, not statistics to quote.

/**
 * Common surnames with their approximate share of the national population in percent, after the
 * widely reported 公安部 户籍 rankings (2019–2020); shares below the top 20 are rounded estimates.
 * A few compound surnames (复姓) close the list at low frequency.
 */
const COMMON_SURNAMES: readonly (readonly [string, number])[] = [
  ['王', 7.25], ['李', 7.2], ['张', 6.8], ['刘', 5.4], ['陈', 4.5], ['杨', 3.1], ['黄', 2.2], ['赵', 2.0],
  ['吴', 2.0], ['周', 1.9], ['徐', 1.3], ['孙', 1.3], ['马', 1.2], ['朱', 1.2], ['胡', 1.2], ['郭', 1.1],
  ['何', 1.0], ['林', 1.0], ['高', 1.0], ['罗', 0.95], ['郑', 0.85], ['梁', 0.8], ['谢', 0.75], ['宋', 0.7],
  ['唐', 0.7], ['许', 0.65], ['韩', 0.65], ['邓', 0.6], ['冯', 0.6], ['曹', 0.55], ['彭', 0.55], ['曾', 0.5],
  ['肖', 0.5], ['田', 0.5], ['董', 0.45], ['潘', 0.45], ['袁', 0.45], ['蔡', 0.45], ['蒋', 0.45], ['余', 0.4],
  ['于', 0.4], ['杜', 0.4], ['叶', 0.4], ['程', 0.4], ['魏', 0.35], ['苏', 0.35], ['吕', 0.35], ['丁', 0.35],
  ['任', 0.35], ['卢', 0.33], ['姚', 0.33], ['沈', 0.33], ['钟', 0.3], ['姜', 0.3], ['崔', 0.3], ['谭', 0.3],
  ['陆', 0.3], ['范', 0.28], ['汪', 0.28], ['廖', 0.27], ['石', 0.27], ['金', 0.27], ['韦', 0.26], ['贾', 0.26],
  ['夏', 0.25], ['付', 0.25], ['方', 0.25], ['邹', 0.24], ['熊', 0.23], ['白', 0.23], ['孟', 0.22], ['秦', 0.22],
  ['邱', 0.22], ['侯', 0.21], ['江', 0.21], ['尹', 0.2], ['薛', 0.2], ['闫', 0.2], ['段', 0.2], ['雷', 0.19],
  ['龙', 0.19], ['黎', 0.18], ['史', 0.18], ['陶', 0.18], ['贺', 0.17], ['毛', 0.17], ['郝', 0.16], ['顾', 0.16],
  ['龚', 0.16], ['邵', 0.16], ['万', 0.15], ['覃', 0.15], ['武', 0.15], ['钱', 0.15], ['戴', 0.15], ['严', 0.14],
  ['莫', 0.14], ['孔', 0.14], ['向', 0.13], ['常', 0.13], ['汤', 0.13], ['葛', 0.12], ['殷', 0.1], ['浦', 0.05],
  ['欧阳', 0.04], ['司徒', 0.01], ['上官', 0.006], ['司马', 0.005], ['诸葛', 0.003], ['皇甫', 0.003], ['东方', 0.002], ['慕容', 0.001],
];

/**
 * Less common surnames that share the rest of the population evenly, so the common ones keep their
 * national shares instead of being inflated to fill 100%. Includes Suzhou names such as 缪, 钮, 浦.
 */
const LESS_COMMON_SURNAMES =
  '乔赖俞傅文易鲁牛章苗庞樊兰柳凌霍虞柴詹温关施洪包左梅祁焦车裴盛钮倪舒岳尚阮宁柯卜滕甘齐褚伍巫单申聂涂耿毕翟邢' +
  '郎桂瞿邬季迟管费蓝谷喻仇甄景鲍庄路晏项成习冉卞练颜解姬邝窦符戚屈米艾宗华童康代苑裘娄栾连茅储穆匡荣濮邰缪' +
  '蔺卓蒲池查谈吉湛刁宫闵柏隋时苟仲靳芦麦谌幸佘邸殷佟岑商伏尤强边桑衣劳鄢蒙于房奚';

const commonShare = COMMON_SURNAMES.reduce((s, [, w]) => s + w, 0);
const lessCommon = [...new Set(LESS_COMMON_SURNAMES)].filter((c) => !COMMON_SURNAMES.some(([n]) => n === c));

/** Surname weights summing to 100: the common ones at their shares, the rest evenly. */
export const SURNAMES: readonly (readonly [string, number])[] = [
  ...COMMON_SURNAMES,
  ...lessCommon.map((c) => [c, (100 - commonShare) / lessCommon.length] as const),
];

/**
 * Characters of given names, by sex and by generation: names given before about 1980 (建国, 秀英)
 * read differently from those given since (子轩, 梓涵).
 */
export const GIVEN_NAME_CHARS = {
  M: {
    older: '建国军华明伟强平林忠德福荣海文志勇斌刚春生兴祥金根宝龙洪庆云峰涛红卫东新民正良发财永耀',
    younger: '浩宇轩子梓俊杰博文昊天睿泽涛磊鹏超晨辰一航铭宸逸凯鑫哲皓然嘉翔宁阳锐晟煜瑞奕辉宏远成',
  },
  F: {
    older: '秀英兰芳珍玉桂凤红梅琴华丽萍敏霞娟燕静艳云菊美翠月素金彩莲花琳凤妹娣宝爱芬亚春',
    younger: '欣怡佳雨梓涵萱诗婷悦琪晨思可馨妍雪淑颖璐瑶嘉慧然晴蕾蓉洁茜倩菲雯月琳瑾语婉若彤',
  },
} as const;

/** 民族: about 98% 汉族, the rest spread over the larger minorities. Weights in percent. */
export const ETHNICITIES: readonly (readonly [string, number])[] = [
  ['汉族', 98.0], ['回族', 0.45], ['满族', 0.3], ['壮族', 0.3], ['苗族', 0.25], ['土家族', 0.2], ['蒙古族', 0.15],
  ['彝族', 0.1], ['布依族', 0.08], ['侗族', 0.07], ['朝鲜族', 0.04], ['维吾尔族', 0.03], ['畲族', 0.03],
];

/**
 * Real county-level codes (checked against the NBS 2023 list) of places many Suzhou residents
 * with a household registration elsewhere come from: Anhui, Henan, northern Jiangsu, Sichuan…
 */
export const MIGRANT_REGIONS: readonly (readonly [string, number])[] = [
  ['340102', 3], // 合肥市瑶海区
  ['341221', 4], // 阜阳市临泉县
  ['341225', 3], // 阜阳市阜南县
  ['341321', 3], // 宿州市砀山县
  ['341622', 3], // 亳州市蒙城县
  ['341623', 2], // 亳州市利辛县
  ['340421', 2], // 淮南市凤台县
  ['410105', 2], // 郑州市金水区
  ['411628', 3], // 周口市鹿邑县
  ['411722', 2], // 驻马店市上蔡县
  ['411526', 2], // 信阳市潢川县
  ['411324', 1], // 南阳市镇平县
  ['320102', 1], // 南京市玄武区
  ['320382', 2], // 徐州市邳州市
  ['320321', 1], // 徐州市丰县
  ['321322', 3], // 宿迁市沭阳县
  ['320923', 2], // 盐城市阜宁县
  ['510104', 1], // 成都市锦江区
  ['511322', 2], // 南充市营山县
  ['511602', 1], // 广安市广安区
  ['500233', 1], // 重庆市忠县
  ['520102', 1], // 贵阳市南明区
  ['421126', 1], // 黄冈市蕲春县
  ['370102', 1], // 济南市历下区
  ['360102', 1], // 南昌市东湖区
  ['330102', 1], // 杭州市上城区
  ['310101', 1], // 上海市黄浦区
];

/** Synthetic road names are a first part and a second part: 和平 + 路. */
export const ROAD_FIRST =
  '和平 建设 文昌 迎春 新华 青年 友谊 春晖 翠园 金桥 银杏 枫林 梧桐 桂花 荷花 长安 太平 朝阳 兴业 振兴 富民 ' +
  '安乐 锦绣 彩虹 滨河 环湖 星光 明月 清风 碧波 望江 临湖 景德 崇文 尚德 育才 劝学 惠民 永安 福寿 吉庆 ' +
  '丰收 长春 华阳 东升 西城 南苑 北塘 新港 通达 宏图 凤凰 玉兰 紫薇 芙蓉 海棠 丁香 香樟 竹园 松鹤';
export const ROAD_SECOND: readonly (readonly [string, number])[] = [['路', 60], ['街', 15], ['大道', 8], ['巷', 10], ['弄', 7]];

/** Mobile 号段 of the three operators; synthetic numbers append 8 random digits. */
export const MOBILE_PREFIXES =
  '134 135 136 137 138 139 147 150 151 152 157 158 159 172 178 182 183 184 187 188 195 198 ' +
  '130 131 132 155 156 166 175 176 185 186 196 133 149 153 173 177 180 181 189 190 191 193 199';

/** Characters for trade names (字号) of synthetic enterprises. */
export const TRADE_NAME_CHARS = '华盛恒鑫瑞德源泰嘉信达宏昌锦隆丰茂博创智联通新科汇能众合元启航远晟睿诚益优帆金银翔越卓聚鼎润驰鸿誉凯';

/** GB/T 4754-2017 sections with rough weights for Suzhou's registered businesses and name words. */
export const INDUSTRIES: readonly { section: string; weight: number; words: readonly string[]; shops: readonly string[] }[] = [
  { section: 'A 农、林、牧、渔业', weight: 1, words: ['农业科技', '生态农业', '园艺'], shops: ['果蔬种植场'] },
  { section: 'C 制造业', weight: 18, words: ['精密机械', '电子科技', '新材料', '纺织', '智能装备', '光电科技', '模具', '包装材料'], shops: ['五金加工厂', '服装加工店'] },
  { section: 'D 电力、热力、燃气及水生产和供应业', weight: 0.5, words: ['新能源', '能源科技'], shops: [] },
  { section: 'E 建筑业', weight: 6, words: ['建筑工程', '装饰工程', '建设工程'], shops: ['装潢部'] },
  { section: 'F 批发和零售业', weight: 30, words: ['贸易', '商贸', '供应链管理', '进出口'], shops: ['便利店', '五金店', '服装店', '水果店', '烟酒店', '副食品店', '茶叶店'] },
  { section: 'G 交通运输、仓储和邮政业', weight: 4, words: ['物流', '运输', '仓储服务'], shops: ['货运部'] },
  { section: 'H 住宿和餐饮业', weight: 5, words: ['餐饮管理', '酒店管理'], shops: ['面馆', '小吃店', '餐馆', '饭店'] },
  { section: 'I 信息传输、软件和信息技术服务业', weight: 7, words: ['信息技术', '软件', '网络科技', '数据科技'], shops: ['电脑维修部'] },
  { section: 'J 金融业', weight: 0.5, words: ['投资管理', '融资租赁'], shops: [] },
  { section: 'K 房地产业', weight: 2, words: ['房地产开发', '物业管理'], shops: ['房产中介'] },
  { section: 'L 租赁和商务服务业', weight: 10, words: ['企业管理咨询', '人力资源', '广告', '商务服务'], shops: ['图文广告部'] },
  { section: 'M 科学研究和技术服务业', weight: 9, words: ['科技', '生物科技', '检测技术', '工程技术'], shops: [] },
  { section: 'N 水利、环境和公共设施管理业', weight: 1, words: ['环保科技', '园林绿化'], shops: [] },
  { section: 'O 居民服务、修理和其他服务业', weight: 3, words: ['家政服务', '汽车服务'], shops: ['理发店', '洗衣店', '修理部', '汽车维修部'] },
  { section: 'P 教育', weight: 1, words: ['教育科技', '培训'], shops: [] },
  { section: 'Q 卫生和社会工作', weight: 0.5, words: ['健康管理', '养老服务'], shops: [] },
  { section: 'R 文化、体育和娱乐业', weight: 2, words: ['文化传媒', '文化艺术', '体育发展'], shops: ['棋牌室'] },
];

/** What 农民专业合作社 in the Suzhou countryside grow or raise. */
export const COOPERATIVE_TRADES = ['水稻种植', '蔬菜种植', '水产养殖', '苗木', '茶叶', '葡萄种植', '大闸蟹养殖', '枇杷种植'];
