import { Suspense, useEffect } from 'react';
import { Loading } from '../components/states';
import { LoginPage } from '../pages/LoginPage';
import { NotFoundPage } from '../pages/NotFoundPage';
import { Layout } from './Layout';
import { matchPath, navigate, useLocation } from './router';
import { ROUTES } from './routes';
import { useSession } from './session';

/** Where to go after signing in: a path of this portal only, never another site. */
export function safeReturn(value: string | null): string {
  return value && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\') && !value.startsWith('/login') ? value : '/projects';
}

/** Picks the page for the current path: the sign-in page until someone is signed in. */
export function App() {
  const { path } = useLocation();
  const { user } = useSession();

  useEffect(() => {
    if (!user && path !== '/login') navigate(`/login?return=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    if (user && (path === '/' || path === '/login')) navigate(safeReturn(new URLSearchParams(location.search).get('return')), { replace: true });
  }, [user, path]);

  if (!user || path === '/login') return <LoginPage />;
  for (const route of ROUTES) {
    const params = matchPath(route.pattern, path);
    if (!params || (route.admin && !user.isAdmin)) continue;
    const Page = route.page;
    return (
      <Layout>
        <Suspense fallback={<Loading />}>
          <Page key={route.pattern} params={params} />
        </Suspense>
      </Layout>
    );
  }
  return (
    <Layout>
      <NotFoundPage />
    </Layout>
  );
}
