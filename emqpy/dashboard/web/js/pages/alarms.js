// Alarms (EMQX's #/alarm with its Current and History tabs) and Flapping Detection settings
// (#/flapping-detect): routes of EMQX's dashboard for features emqpy has.
import { defineComponent, ref } from 'vue';
import { useRoute } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, usePolling, DataTable, Pager, ConfigForm, formatDate, formatDuration } from '../ui.js';

export const Alarms = defineComponent({
  components: { DataTable, Pager },
  setup() {
    const route = useRoute();
    const history = route.path.endsWith('history-alarm');
    const { state, load } = usePaged(() => '/alarms', () => ({ activated: !history }), api);
    usePolling(() => load(), 10000);
    const columns = [{ key: 'name', label: t('alarms.name') }, { key: 'message', label: t('alarms.message') },
      { key: 'node', label: t('clients.node') }, { key: 'activate_at', label: t('alarms.activateAt') },
      history ? { key: 'deactivate_at', label: t('alarms.deactivateAt') } : { key: 'duration', label: t('alarms.duration') }];
    async function clearHistory() {
      if (!(await confirmBox(t('alarms.confirmClear')))) return;
      try { await api('DELETE', '/alarms'); ok(t('app.deleted')); load(1); } catch (e) { fail(e); }
    }
    const rows = () => state.rows.map((r, i) => ({ ...r, _key: `${r.name}#${r.activate_at}#${i}` }));
    return { t, history, state, load, columns, clearHistory, rows, formatDate, formatDuration };
  },
  template: `<section><header class="page-head"><h1>{{ history ? t('alarms.history') : t('alarms.current') }}</h1>
      <button v-if="history" type="button" class="danger" @click="clearHistory">{{ t('alarms.clear') }}</button></header>
    <DataTable :columns="columns" :rows="rows()" row-key="_key" :loading="state.loading" :label="t('menu.alarms')">
      <template #cell-activate_at="{row}">{{ formatDate(row.activate_at) }}</template>
      <template #cell-deactivate_at="{row}">{{ formatDate(row.deactivate_at) }}</template>
      <template #cell-duration="{row}">{{ formatDuration(row.duration) }}</template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager></section>`,
});

export const FlappingDetect = defineComponent({
  components: { ConfigForm },
  setup() {
    const value = ref(null);
    const load = async () => {
      try { value.value = (await api('GET', '/configs/global_zone')).flapping_detect; } catch (e) { fail(e); }
    };
    load();
    async function save(edited) {
      try { await api('PUT', '/configs/global_zone', { body: { flapping_detect: edited } }); ok(t('app.saved')); }
      catch (e) { fail(e); }
    }
    return { t, value, save };
  },
  template: `<section><h1>{{ t('menu.flapping') }}</h1>
    <ConfigForm v-if="value" :value="value" :label="t('menu.flapping')" @save="save"></ConfigForm></section>`,
});
