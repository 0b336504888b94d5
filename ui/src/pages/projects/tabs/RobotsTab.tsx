import { useState, type FormEvent } from 'react';
import { api, seg, type Page } from '../../../api/client';
import { ROBOT_ACTIONS, type CreatedRobot, type Robot, type RobotAction } from '../../../api/project-tabs';
import type { ProjectTabProps } from '../../../api/projects';
import { registryHost, useSession } from '../../../app/session';
import { Copyable } from '../../../components/CopyButton';
import { DataTable, type Column } from '../../../components/DataTable';
import { ConfirmDialog, Dialog } from '../../../components/Dialog';
import { CheckboxField, SelectField, TextField, wholeNumber } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { EmptyState, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { NumberField } from '../../../components/Field';

const SHORT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** A project's robot accounts; with robot.manage: create, refresh the secret, disable/enable, delete. */
export function RobotsTab({ project }: ProjectTabProps) {
  const { t, dateTime } = useI18n();
  const manage = project.permissions.includes('robot.manage');
  const [reloadKey, setReloadKey] = useState(0);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [deleting, setDeleting] = useState<Robot | null>(null);
  const [refreshing, setRefreshing] = useState<Robot | null>(null);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);
  const reload = () => setReloadKey((k) => k + 1);
  const robotPath = (r: Robot) => `/robots/${seg(r.name)}`;

  const toggle = async (r: Robot) => {
    setNotice(null);
    try {
      await api.patch(robotPath(r), { disabled: !r.disabled });
      setNotice({ kind: 'success', text: t(r.disabled ? 'robots.enabledNotice' : 'robots.disabledNotice', { name: r.name }) });
    } catch (err) {
      setNotice({ kind: 'error', text: errorMessage(t, err) });
    }
    reload();
  };

  const columns: Column<Robot>[] = [
    {
      key: 'name',
      header: t('robots.col.name'),
      render: (r) => (
        <>
          <code className="pt-nowrap">{r.name}</code>
          {r.description && <div className="muted pt-small">{r.description}</div>}
        </>
      ),
    },
    {
      key: 'permissions',
      header: t('robots.col.permissions'),
      render: (r) => (
        <span className="pt-badges">
          {r.permissions.flatMap((p) => p.actions).map((a) => (
            <span key={a} className="badge">
              {(ROBOT_ACTIONS as readonly string[]).includes(a) ? t(`robots.action.${a as RobotAction}`) : a}
            </span>
          ))}
        </span>
      ),
    },
    {
      key: 'expires',
      header: t('robots.col.expires'),
      render: (r) =>
        r.expiresAt === null ? (
          t('common.never')
        ) : (
          <>
            {dateTime(r.expiresAt)} {Date.parse(r.expiresAt) < Date.now() && <span className="badge badge-bad">{t('robots.expired')}</span>}
          </>
        ),
    },
    {
      key: 'status',
      header: t('common.status'),
      render: (r) => <span className={`badge ${r.disabled ? 'badge-bad' : 'badge-ok'}`}>{r.disabled ? t('common.disabled') : t('common.enabled')}</span>,
    },
    { key: 'created', header: t('common.created'), render: (r) => dateTime(r.createdAt) },
  ];
  if (manage) {
    columns.push({
      key: 'actions',
      header: t('common.actions'),
      render: (r) => (
        <span className="pt-actions">
          <button type="button" onClick={() => setRefreshing(r)} aria-label={t('robots.refreshLabel', { name: r.name })}>
            {t('robots.refresh')}
          </button>
          <button type="button" onClick={() => void toggle(r)} aria-label={t(r.disabled ? 'robots.enableLabel' : 'robots.disableLabel', { name: r.name })}>
            {r.disabled ? t('robots.enable') : t('robots.disable')}
          </button>
          <button type="button" onClick={() => setDeleting(r)} aria-label={t('robots.deleteLabel', { name: r.name })}>
            {t('common.delete')}
          </button>
        </span>
      ),
    });
  }

  return (
    <section aria-labelledby="pt-robots-h">
      <h2 id="pt-robots-h">{t('robots.title')}</h2>
      <p className="muted">{t('robots.intro')}</p>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <DataTable<Robot>
        caption={t('robots.caption', { project: project.name })}
        columns={columns}
        rowKey={(r) => r.name}
        queryPrefix="r."
        reloadKey={reloadKey}
        load={({ page, pageSize }, signal) => api.get<Page<Robot>>('/robots', { project: project.name, page, pageSize }, signal)}
        toolbar={
          manage ? (
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              {t('robots.new')}
            </button>
          ) : undefined
        }
        empty={<EmptyState title={t('robots.empty')}>{manage && <p>{t('robots.emptyHint')}</p>}</EmptyState>}
      />
      <CreateRobot
        open={creating}
        project={project.name}
        onClose={() => setCreating(false)}
        onCreated={(created) => {
          setCreating(false);
          setSecret({ name: created.name, secret: created.secret });
          reload();
        }}
      />
      <SecretDialog shown={secret} onClose={() => setSecret(null)} />
      <ConfirmDialog
        open={refreshing !== null}
        title={t('robots.refreshTitle')}
        message={refreshing ? t('robots.refreshConfirm', { name: refreshing.name }) : ''}
        confirmLabel={t('robots.refresh')}
        onConfirm={async () => {
          if (!refreshing) return;
          const answer = await api.post<{ name: string; secret: string }>(`${robotPath(refreshing)}/refresh`);
          setSecret(answer);
        }}
        onClose={() => setRefreshing(null)}
      />
      <ConfirmDialog
        open={deleting !== null}
        title={t('robots.deleteTitle')}
        message={deleting ? t('robots.deleteConfirm', { name: deleting.name }) : ''}
        confirmLabel={t('common.delete')}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(robotPath(deleting));
          setNotice({ kind: 'success', text: t('robots.deleted', { name: deleting.name }) });
          reload();
        }}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

/** The new robot's form: name, description, what it may do in this project, when it expires. */
function CreateRobot({ open, project, onClose, onCreated }: { open: boolean; project: string; onClose: () => void; onCreated: (robot: CreatedRobot) => void }) {
  const { t } = useI18n();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [actions, setActions] = useState<Set<RobotAction>>(new Set(['pull']));
  const [expiry, setExpiry] = useState<'never' | 'days'>('days');
  const [days, setDays] = useState('30');
  const [tried, setTried] = useState(false);
  const action = useAction();

  const nameError = !SHORT_NAME.test(name) || name.length > 64 ? t('robots.form.nameRule') : undefined;
  const daysValue = wholeNumber(days, 1, 36_500);
  const daysError = expiry === 'days' && daysValue === undefined ? t('robots.form.daysRule') : undefined;
  const actionsError = actions.size === 0 ? t('robots.form.actionsRule') : undefined;

  const close = () => {
    setName('');
    setDescription('');
    setActions(new Set(['pull']));
    setTried(false);
    action.clear();
    onClose();
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setTried(true);
    if (nameError || daysError || actionsError) return;
    let created: CreatedRobot | undefined;
    const ok = await action.run(async () => {
      created = await api.post<CreatedRobot>('/robots', {
        name,
        project,
        ...(description.trim() ? { description: description.trim() } : {}),
        expiresInDays: expiry === 'never' ? -1 : daysValue,
        permissions: [{ project, actions: ROBOT_ACTIONS.filter((a) => actions.has(a)) }],
      });
    });
    if (ok && created) {
      const robot = created;
      close();
      onCreated(robot);
    }
  };

  return (
    <Dialog open={open} title={t('robots.form.title')} onClose={close}>
      <form className="pt-dialog-form" onSubmit={submit} noValidate>
        <TextField label={t('robots.form.name')} value={name} onChange={setName} required maxLength={64} autoComplete="off" hint={t('robots.form.nameHint', { project })} error={tried ? nameError : undefined} />
        <TextField label={t('robots.form.description')} value={description} onChange={setDescription} maxLength={1024} />
        <fieldset>
          <legend>{t('robots.form.permissions', { project })}</legend>
          {ROBOT_ACTIONS.map((a) => (
            <CheckboxField
              key={a}
              label={t(`robots.action.${a}`)}
              hint={t(`robots.actionHint.${a}`)}
              checked={actions.has(a)}
              onChange={(on) => {
                const next = new Set(actions);
                if (on) next.add(a);
                else next.delete(a);
                setActions(next);
              }}
            />
          ))}
          {tried && actionsError && <p className="field-error">{actionsError}</p>}
        </fieldset>
        <SelectField<'never' | 'days'>
          label={t('robots.form.expiry')}
          value={expiry}
          onChange={setExpiry}
          options={[
            { value: 'days', label: t('robots.form.expiryDays') },
            { value: 'never', label: t('robots.form.expiryNever') },
          ]}
        />
        {expiry === 'days' && <NumberField label={t('robots.form.days')} value={days} onChange={setDays} min={1} max={36_500} hint={tried ? daysError : undefined} />}
        {action.error !== undefined && <Notice kind="error">{errorMessage(t, action.error)}</Notice>}
        <div className="dialog-actions">
          <button type="button" onClick={close}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={action.busy}>
            {t('common.create')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** The secret, once: with a copy button and the docker login command, and a plain warning. */
function SecretDialog({ shown, onClose }: { shown: { name: string; secret: string } | null; onClose: () => void }) {
  const { t } = useI18n();
  const { info } = useSession();
  const host = registryHost(info);
  return (
    <Dialog open={shown !== null} title={t('robots.secret.title')} onClose={onClose}>
      {shown && (
        <>
          <div className="secret" role="status">
            <strong>{t('robots.secret.once')}</strong>
          </div>
          <dl className="props pt-props">
            <dt>{t('robots.col.name')}</dt>
            <dd>
              <Copyable text={shown.name} what={t('robots.secret.nameWhat')} />
            </dd>
            <dt>{t('robots.secret.secret')}</dt>
            <dd>
              <Copyable text={shown.secret} what={t('robots.secret.secretWhat')} />
            </dd>
            <dt>{t('robots.secret.login')}</dt>
            <dd>
              <Copyable text={`docker login ${host} -u '${shown.name}'`} what={t('robots.secret.loginWhat')} />
            </dd>
          </dl>
          <p className="muted">{t('robots.secret.loginHint')}</p>
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={onClose}>
              {t('robots.secret.done')}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
