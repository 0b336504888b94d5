import { useState, type ReactNode } from 'react';
import { api } from '../api/client';
import { useApi } from '../components/hooks';
import { useI18n, type MessageKey } from '../i18n/index';
import { LanguageSelect } from '../components/LanguageSelect';
import { Link, navigate, useLocation } from './router';
import { useSession } from './session';

const ADMIN_LINKS: { to: string; label: MessageKey }[] = [
  { to: '/admin/users', label: 'nav.users' },
  { to: '/admin/groups', label: 'nav.groups' },
  { to: '/admin/registries', label: 'nav.registries' },
  { to: '/admin/replication', label: 'nav.replication' },
  { to: '/admin/gc', label: 'nav.gc' },
  { to: '/admin/jobs', label: 'nav.jobs' },
  { to: '/admin/settings', label: 'nav.settings' },
  { to: '/admin/connection', label: 'nav.connection' },
];

/** For administrators: whether this page's own request reached Berth the way its external URL says. */
function ConnectionBanner() {
  const { t } = useI18n();
  const check = useApi((signal) => api.get<{ agrees: boolean }>('/system/connection', undefined, signal), []);
  if (!check.data || check.data.agrees) return null;
  return (
    <div className="banner banner-warning" role="alert">
      {t('banner.connection')} <Link to="/admin/connection">{t('banner.connectionLink')}</Link>
    </div>
  );
}

/** The frame of every page once signed in: header, navigation, banners, and the page in <main>. */
export function Layout({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { user, info, signOut } = useSession();
  const { path } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const current = (to: string) => (path === to || path.startsWith(`${to}/`) ? 'page' : undefined);
  const navLink = (to: string, label: MessageKey) => (
    <li key={to}>
      <Link to={to} aria-current={current(to)} onClick={() => setMenuOpen(false)}>
        {t(label)}
      </Link>
    </li>
  );

  return (
    <div className="frame">
      <a className="skip" href="#main">
        {t('app.skip')}
      </a>
      <header className="topbar">
        <Link to="/projects" className="brand">
          {t('app.name')}
        </Link>
        <button type="button" className="menu-button" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen((o) => !o)}>
          {t('nav.menu')}
        </button>
        <div className="topbar-end">
          <LanguageSelect label={t('nav.language')} />
          <Link to="/account" className="user" aria-label={t('nav.signedInAs', { name: user?.name ?? '' })}>
            {user?.name}
          </Link>
          <button
            type="button"
            onClick={() => {
              void signOut().then(() => navigate('/login', { replace: true }));
            }}
          >
            {t('nav.signOut')}
          </button>
        </div>
      </header>
      <div className="body">
        <nav id="nav" className={menuOpen ? 'sidenav open' : 'sidenav'} aria-label={t('nav.label')}>
          <ul>
            {navLink('/projects', 'nav.projects')}
            {navLink('/account', 'nav.account')}
          </ul>
          {user?.isAdmin && (
            <>
              <h2 className="nav-heading">{t('nav.admin')}</h2>
              <ul>{ADMIN_LINKS.map((l) => navLink(l.to, l.label))}</ul>
            </>
          )}
        </nav>
        <main id="main" tabIndex={-1}>
          {user?.isAdmin && <ConnectionBanner />}
          {info?.announcement && (
            <div className="banner banner-info" role="status">
              <strong>{t('banner.announcement')}:</strong> {info.announcement}
            </div>
          )}
          {children}
        </main>
      </div>
    </div>
  );
}
