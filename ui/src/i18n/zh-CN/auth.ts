import type { auth as en } from '../en/auth';

export const auth: Record<keyof typeof en, string> = {
  'login.title': '登录 Berth',
  'login.username': '用户名',
  'login.password': '密码',
  'login.submit': '登录',
  'login.busy': '正在登录…',
  'login.or': '或',
  'login.sso': '通过 {provider} 登录',
  'login.ssoHint': '使用公司账户登录。本地账户（如 admin）请使用表单登录。',
  'login.failed': '用户名或密码错误。',
  'login.robot': '机器人账户不能登录门户；请用其密钥执行 docker login。',
  'login.tooMany': '尝试次数过多。请稍等一分钟后重试。',
  'login.unavailable': '目录服务或身份提供方没有响应。请稍后重试，或请管理员运行 berth auth test。',
  'login.sso_denied': '身份提供方拒绝了你的登录。',
  'login.sso_expired': '登录耗时过长，请重新开始。',
  'login.sso_state': '无法验证此次登录（它是在另一个浏览器或标签页中发起的）。请重新开始。',
  'login.sso_unavailable': '身份提供方没有响应。请稍后重试。',
  'login.sso_not_onboarded': '你的账户尚未在 Berth 中开通。请联系管理员。',
  'login.sso_failed': '通过身份提供方登录失败，请重新开始。',
  'login.signedOut': '你已退出登录。',
};
