// Simplified Chinese by default, English on request. A page's language comes from ?lang=, then the
// `lang` cookie (set by the language switch), then zh-CN; Accept-Language is not used, so a link
// shared between people shows the same language the sender chose only if it carries ?lang=.
import type { FastifyRequest } from 'fastify';

export const LANGS = ['zh-CN', 'en'] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = 'zh-CN';

export interface Text {
  zh: string;
  en: string;
}

export function isLang(v: unknown): v is Lang {
  return typeof v === 'string' && (LANGS as readonly string[]).includes(v);
}

export function requestLang(req: FastifyRequest): Lang {
  const q = (req.query as Record<string, unknown> | undefined)?.lang;
  if (isLang(q)) return q;
  const c = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.lang;
  if (isLang(c)) return c;
  return DEFAULT_LANG;
}

/** Picks the text of one language. */
export function tr(text: Text, lang: Lang): string {
  return lang === 'en' ? text.en : text.zh;
}
