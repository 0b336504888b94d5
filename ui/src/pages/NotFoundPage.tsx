import { Link, useTitle } from '../app/router';
import { useI18n } from '../i18n/index';

export function NotFoundPage() {
  const { t } = useI18n();
  useTitle(t('notFound.title'));
  return (
    <section>
      <h1>{t('notFound.title')}</h1>
      <p>{t('notFound.text')}</p>
      <Link to="/projects">{t('notFound.home')}</Link>
    </section>
  );
}
