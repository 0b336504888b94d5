import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client';
import { safeReturn } from '../app/App';
import { navigate, useLocation, useTitle } from '../app/router';
import { useSession } from '../app/session';
import { TextField } from '../components/Field';
import { errorMessage, Notice } from '../components/states';
import { useI18n, type MessageKey } from '../i18n/index';
import { LanguageSelect } from '../components/LanguageSelect';

// The codes the OpenID callback sends the browser back with (src/http/api/sso.ts PORTAL_SIGN_IN_ERRORS).
const SSO_ERRORS = ['sso_denied', 'sso_expired', 'sso_state', 'sso_unavailable', 'sso_not_onboarded', 'sso_failed'];

/** Sign in with a password, or through the OpenID provider when one is configured. */
export function LoginPage() {
  const { t } = useI18n();
  const { authConfig, refresh } = useSession();
  const { query } = useLocation();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useTitle(t('login.title'));

  const ssoError = query.get('error');
  const returnTo = safeReturn(query.get('return'));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post('/auth/session', { username, password });
      await refresh();
      navigate(returnTo, { replace: true });
    } catch (err) {
      setPassword('');
      if (err instanceof ApiError && err.status === 401) setError(t('login.failed'));
      else if (err instanceof ApiError && err.status === 403) setError(t('login.robot'));
      else if (err instanceof ApiError && err.status === 429) setError(t('login.tooMany'));
      else if (err instanceof ApiError && err.status === 503) setError(t('login.unavailable'));
      else setError(errorMessage(t, err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="login">
      <div className="login-card">
        <h1>{t('login.title')}</h1>
        {ssoError && (
          <Notice kind="error">{t((SSO_ERRORS.includes(ssoError) ? `login.${ssoError}` : 'login.sso_failed') as MessageKey)}</Notice>
        )}
        {error && <Notice kind="error">{error}</Notice>}
        <form onSubmit={submit}>
          <TextField label={t('login.username')} value={username} onChange={setUsername} autoComplete="username" required maxLength={255} name="username" />
          <TextField label={t('login.password')} value={password} onChange={setPassword} type="password" autoComplete="current-password" required maxLength={1024} name="password" />
          <button type="submit" className="primary" disabled={busy}>
            {busy ? t('login.busy') : t('login.submit')}
          </button>
        </form>
        {authConfig.oidc && (
          <div className="sso">
            <p className="divider">{t('login.or')}</p>
            <a className="button primary" href={`${authConfig.oidc.loginPath}?return=${encodeURIComponent(returnTo)}`}>
              {t('login.sso', { provider: authConfig.oidc.displayName })}
            </a>
            <p className="field-hint">{t('login.ssoHint')}</p>
          </div>
        )}
        <LanguageSelect label="Language / 语言" />
      </div>
    </main>
  );
}

