import { Link } from '../app/router';

/** Tabs that are links (each tab has its own address): the current one is marked for assistive technology. */
export function Tabs({ label, tabs, current }: { label: string; tabs: { id: string; label: string; to: string }[]; current: string }) {
  return (
    <nav className="tabs" aria-label={label}>
      <ul>
        {tabs.map((tab) => (
          <li key={tab.id}>
            <Link to={tab.to} aria-current={tab.id === current ? 'page' : undefined}>
              {tab.label}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
