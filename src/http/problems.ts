// The one error model: every API error is an RFC 9457 problem (application/problem+json) whose `type`
// is one of these stable names, dereferenceable as /problems/{name}. Modules add theirs to this list
// rather than inventing shapes of their own.

export interface ProblemType {
  status: number;
  title: { zh: string; en: string };
  description: { zh: string; en: string };
}

export const PROBLEM_TYPES = {
  'bad-request': {
    status: 400,
    title: { zh: '请求无效', en: 'Bad request' },
    description: { zh: '请求的格式或内容无法处理。', en: 'The request could not be understood as sent.' },
  },
  validation: {
    status: 400,
    title: { zh: '输入校验未通过', en: 'Validation failed' },
    description: {
      zh: '请求中有字段不符合接口约定；errors 列出每个字段及原因。',
      en: 'One or more fields do not satisfy the API contract; `errors` lists each field and why.',
    },
  },
  unauthorized: {
    status: 401,
    title: { zh: '需要登录', en: 'Authentication required' },
    description: { zh: '此资源需要有效的身份凭证。', en: 'This resource needs valid credentials.' },
  },
  forbidden: {
    status: 403,
    title: { zh: '无权访问', en: 'Forbidden' },
    description: { zh: '当前身份无权执行此操作。', en: 'The current identity may not perform this action.' },
  },
  'not-found': {
    status: 404,
    title: { zh: '未找到', en: 'Not found' },
    description: { zh: '所请求的资源不存在。', en: 'The requested resource does not exist.' },
  },
  'method-not-allowed': {
    status: 405,
    title: { zh: '不支持的方法', en: 'Method not allowed' },
    description: { zh: '此资源不支持该 HTTP 方法。', en: 'This resource does not support the HTTP method used.' },
  },
  conflict: {
    status: 409,
    title: { zh: '状态冲突', en: 'Conflict' },
    description: { zh: '请求与资源的当前状态冲突。', en: 'The request conflicts with the current state of the resource.' },
  },
  'payload-too-large': {
    status: 413,
    title: { zh: '请求体过大', en: 'Payload too large' },
    description: { zh: '请求体超过了此接口允许的大小。', en: 'The request body exceeds the size this endpoint accepts.' },
  },
  'unsupported-media-type': {
    status: 415,
    title: { zh: '不支持的内容类型', en: 'Unsupported media type' },
    description: { zh: '此接口不接受该 Content-Type。', en: 'This endpoint does not accept the Content-Type sent.' },
  },
  'rate-limited': {
    status: 429,
    title: { zh: '请求过于频繁', en: 'Too many requests' },
    description: { zh: '请稍后再试；Retry-After 指明等待秒数。', en: 'Try again later; Retry-After gives the seconds to wait.' },
  },
  internal: {
    status: 500,
    title: { zh: '服务器内部错误', en: 'Internal server error' },
    description: {
      zh: '服务器出现意外错误，已记录日志；请凭 instance 中的请求编号联系运维。',
      en: 'An unexpected error occurred and was logged; quote the request id in `instance` to operations.',
    },
  },
  unavailable: {
    status: 503,
    title: { zh: '服务暂不可用', en: 'Service unavailable' },
    description: { zh: '服务正在启动、停止或其依赖不可用。', en: 'The service is starting, stopping, or a dependency is down.' },
  },
} satisfies Record<string, ProblemType>;

export type ProblemName = keyof typeof PROBLEM_TYPES;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Thrown anywhere; the HTTP layer turns it into a problem+json response (or an error page). */
export class HttpProblem extends Error {
  readonly problem: ProblemName;
  readonly status: number;
  readonly extensions: Record<string, unknown>;
  constructor(problem: ProblemName, detail?: string, extensions: Record<string, unknown> = {}) {
    super(detail ?? PROBLEM_TYPES[problem].title.en);
    this.problem = problem;
    this.status = PROBLEM_TYPES[problem].status;
    this.extensions = extensions;
  }
}

export const problem = (name: ProblemName, detail?: string, extensions?: Record<string, unknown>) => new HttpProblem(name, detail, extensions);

export function problemBody(name: ProblemName, lang: 'zh-CN' | 'en', detail: string | undefined, instance: string, extensions: Record<string, unknown> = {}): Problem {
  const t = PROBLEM_TYPES[name];
  return {
    ...extensions,
    type: `/problems/${name}`,
    title: lang === 'en' ? t.title.en : t.title.zh,
    status: t.status,
    ...(detail ? { detail } : {}),
    instance,
  };
}
