import { useEffect, useState, type ReactNode } from 'react';
import type { Page } from '../api/client';
import { setQuery, useLocation } from '../app/router';
import { useI18n } from '../i18n/index';
import { useApi } from './hooks';
import { EmptyState, ErrorState, Loading } from './states';

export interface Column<T> {
  key: string;
  header: string;
  /** The API's `sort` value for this column ascending; descending is `-` + it. Unset: not sortable. */
  sort?: string;
  render: (row: T) => ReactNode;
  className?: string;
}

export interface ListParams {
  page: number;
  pageSize: number;
  sort?: string;
  q?: string;
}

export interface DataTableProps<T> {
  /** Names the table for assistive technology (shown as its caption, visually hidden). */
  caption: string;
  columns: Column<T>[];
  /** Fetches one page from the server: paging, sorting and filtering happen there. */
  load: (params: ListParams, signal: AbortSignal) => Promise<Page<T>>;
  rowKey: (row: T) => string;
  defaultSort?: string;
  /** Shows a filter box (sent as `q`) with this label. */
  filterLabel?: string;
  /** Shown when there is nothing at all (no filter): what to do next. */
  empty?: ReactNode;
  /** Changing it loads the page again (after a create or delete). */
  reloadKey?: unknown;
  /** Prefix of the URL parameters holding page/sort/filter, when a page has two tables. */
  queryPrefix?: string;
  /** Buttons shown beside the filter. */
  toolbar?: ReactNode;
}

const PAGE_SIZES = [25, 50, 100];

/**
 * A list fetched a page at a time: page, page size, sort and filter live in the URL (the back
 * button and a shared link show the same page) and are applied by the server.
 */
export function DataTable<T>({ caption, columns, load, rowKey, defaultSort, filterLabel, empty, reloadKey, queryPrefix = '', toolbar }: DataTableProps<T>) {
  const { t, number } = useI18n();
  const { query } = useLocation();
  const p = (name: string) => `${queryPrefix}${name}`;
  const page = Math.max(1, Number(query.get(p('page'))) || 1);
  const pageSize = PAGE_SIZES.includes(Number(query.get(p('size')))) ? Number(query.get(p('size'))) : PAGE_SIZES[0]!;
  const sort = query.get(p('sort')) ?? defaultSort;
  const q = query.get(p('q')) ?? '';
  const [filter, setFilter] = useState(q);

  useEffect(() => setFilter(q), [q]);
  useEffect(() => {
    if (filter === q) return;
    const timer = setTimeout(() => setQuery({ [p('q')]: filter, [p('page')]: undefined }), 300);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filter]);

  const list = useApi((signal) => load({ page, pageSize, sort, q: q || undefined }, signal), [page, pageSize, sort, q, reloadKey]);
  const data = list.data;
  const pages = data ? Math.max(1, Math.ceil(data.total / data.pageSize)) : 1;

  const sortBy = (column: Column<T>) => {
    if (!column.sort) return;
    const next = sort === column.sort ? `-${column.sort}` : column.sort;
    setQuery({ [p('sort')]: next, [p('page')]: undefined });
  };
  const ariaSort = (column: Column<T>): 'ascending' | 'descending' | undefined =>
    column.sort && sort === column.sort ? 'ascending' : column.sort && sort === `-${column.sort}` ? 'descending' : undefined;

  return (
    <div className="datatable">
      {(filterLabel || toolbar) && (
        <div className="toolbar">
          {filterLabel && (
            <input
              type="search"
              className="filter"
              aria-label={filterLabel}
              placeholder={filterLabel}
              value={filter}
              maxLength={255}
              onChange={(e) => setFilter(e.target.value)}
            />
          )}
          {toolbar}
        </div>
      )}
      {list.error !== undefined && !list.loading ? (
        <ErrorState error={list.error} retry={list.reload} />
      ) : !data ? (
        <Loading />
      ) : data.total === 0 ? (
        q ? <EmptyState title={t('table.noMatch', { q })} /> : (empty ?? <EmptyState title={t('table.empty')} />)
      ) : (
        <>
          <div className="table-wrap" tabIndex={0} role="region" aria-label={caption}>
            <table aria-busy={list.loading}>
              <caption className="visually-hidden">{caption}</caption>
              <thead>
                <tr>
                  {columns.map((column) => (
                    <th key={column.key} scope="col" aria-sort={ariaSort(column)} className={column.className}>
                      {column.sort ? (
                        <button type="button" className="sort" onClick={() => sortBy(column)} aria-label={t('common.sortBy', { column: column.header })}>
                          {column.header}
                          <span aria-hidden="true">{ariaSort(column) === 'ascending' ? ' ▲' : ariaSort(column) === 'descending' ? ' ▼' : ''}</span>
                        </button>
                      ) : (
                        column.header
                      )}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {data.items.map((row) => (
                  <tr key={rowKey(row)}>
                    {columns.map((column) => (
                      <td key={column.key} className={column.className} data-label={column.header}>
                        {column.render(row)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pagination" aria-label={`${t('table.pagination')}: ${caption}`}>
            <span>{t('table.total', { total: number(data.total) })}</span>
            <label>
              {t('table.pageSize')}{' '}
              <select value={pageSize} onChange={(e) => setQuery({ [p('size')]: e.target.value, [p('page')]: undefined })}>
                {PAGE_SIZES.map((size) => (
                  <option key={size} value={size}>
                    {size}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" disabled={page <= 1} onClick={() => setQuery({ [p('page')]: page - 1 })}>
              {t('table.previous')}
            </button>
            <span aria-live="polite">{t('table.page', { page: number(page), pages: number(pages) })}</span>
            <button type="button" disabled={page >= pages} onClick={() => setQuery({ [p('page')]: page + 1 })}>
              {t('table.next')}
            </button>
          </nav>
        </>
      )}
    </div>
  );
}
