// Diagnose → Topic Metrics (counts and rates of the watched topics, add, remove, reset) and
// Slow Subscriptions (the ranking of slow deliveries, clear; its settings on /slow-sub/config).
// Both refresh on their own while shown.
import { computed, defineComponent, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePolling, DataTable, Dialog, ConfigForm, formatDate } from '../ui.js';

const enc = encodeURIComponent;

export const TopicMetrics = defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const rows = ref([]);
    const loading = ref(true);
    const topic = ref('');
    const load = async () => {
      try { rows.value = await api('GET', '/mqtt/topic_metrics'); } catch (e) { fail(e); } finally { loading.value = false; }
    };
    usePolling(load, 5000);
    const columns = [{ key: 'topic', label: t('topicMetrics.topic') },
      ...['in', 'out', 'dropped'].flatMap((dir) => [
        { key: `messages.${dir}.count`, label: t(`topicMetrics.${dir}`) },
        { key: `messages.${dir}.rate`, label: `${t(`topicMetrics.${dir}`)} (${t('overview.rate')})` }]),
      { key: 'create_time', label: t('topicMetrics.startTime') }, { key: 'actions', label: t('app.actions') }];
    // the topic whose every metric (by QoS too) is shown, live as the list refreshes
    const shownTopic = ref(null);
    const shown = computed(() => rows.value.find((r) => r.topic === shownTopic.value) || null);
    const view = (row) => { shownTopic.value = row.topic; };
    const flat = () => rows.value.map((r) => ({ ...r.metrics, topic: r.topic, create_time: r.create_time }));
    async function add() {
      try {
        await api('POST', '/mqtt/topic_metrics', { body: { topic: topic.value } });
        ok(t('app.created')); topic.value = ''; load();
      } catch (e) { fail(e); }
    }
    async function reset(row) {
      const body = row ? { action: 'reset', topic: row.topic } : { action: 'reset' };
      if (!(await confirmBox(row ? t('topicMetrics.confirmReset') : t('topicMetrics.confirmResetAll')))) return;
      try { await api('PUT', '/mqtt/topic_metrics', { body }); ok(t('topicMetrics.resetDone')); load(); } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/mqtt/topic_metrics/${enc(row.topic)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    return { t, flat, loading, columns, topic, add, reset, remove, shown, shownTopic, view, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.topicMetrics') }}</h1>
      <button type="button" @click="reset(null)">{{ t('topicMetrics.resetAll') }}</button></header>
    <form class="toolbar" @submit.prevent="add">
      <input v-model="topic" required :aria-label="t('topicMetrics.topic')" :placeholder="t('topicMetrics.topic')">
      <button type="submit" class="primary">{{ t('topicMetrics.add') }}</button></form>
    <DataTable :columns="columns" :rows="flat()" row-key="topic" :loading="loading" :label="t('menu.topicMetrics')">
      <template #cell-create_time="{row}">{{ formatDate(row.create_time) }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="view(row)" :aria-label="t('topicMetrics.view') + ' ' + row.topic">{{ t('topicMetrics.view') }}</button>
        <button type="button" class="link" @click="reset(row)" :aria-label="t('app.reset') + ' ' + row.topic">{{ t('app.reset') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.topic">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="!!shown" :title="shown ? shown.topic : ''" @close="shownTopic = null">
      <dl class="facts" v-if="shown"><template v-for="(v, k) in shown.metrics" :key="k">
        <dt>{{ k }}</dt><dd>{{ v }}</dd></template></dl></Dialog></section>`,
});

export const SlowSubs = defineComponent({
  components: { DataTable },
  setup() {
    const rows = ref([]);
    const loading = ref(true);
    const enabled = ref(true);
    const load = async () => {
      try {
        rows.value = (await api('GET', '/slow_subscriptions')).data;
        enabled.value = (await api('GET', '/slow_subscriptions/settings')).enable;
      } catch (e) { fail(e); } finally { loading.value = false; }
    };
    usePolling(load, 5000);
    const columns = [{ key: 'clientid', label: t('slowSub.clientId') }, { key: 'topic', label: t('slowSub.topic') },
      { key: 'timespan', label: t('slowSub.timespan') }, { key: 'node', label: t('slowSub.node') },
      { key: 'last_update_time', label: t('slowSub.updatedAt') }];
    async function clear() {
      if (!(await confirmBox(t('slowSub.confirmClear')))) return;
      try { await api('DELETE', '/slow_subscriptions'); ok(t('slowSub.cleared')); load(); } catch (e) { fail(e); }
    }
    const keyed = () => rows.value.map((r) => ({ ...r, _key: `${r.clientid}\u0000${r.topic}` }));
    return { t, keyed, loading, enabled, columns, clear, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.slowSub') }}</h1>
      <span><router-link class="button" to="/slow-sub/config">{{ t('slowSub.settings') }}</router-link>
      <button type="button" class="danger" @click="clear">{{ t('slowSub.clear') }}</button></span></header>
    <p v-if="!enabled" class="warn">{{ t('slowSub.disabled') }}</p>
    <DataTable :columns="columns" :rows="keyed()" row-key="_key" :loading="loading" :label="t('menu.slowSub')">
      <template #cell-last_update_time="{row}">{{ formatDate(row.last_update_time) }}</template>
    </DataTable>
    <Dialog :open="!!shown" :title="shown ? shown.topic : ''" @close="shownTopic = null">
      <dl class="facts" v-if="shown"><template v-for="(v, k) in shown.metrics" :key="k">
        <dt>{{ k }}</dt><dd>{{ v }}</dd></template></dl></Dialog></section>`,
});

export const SlowSubsSettings = defineComponent({
  components: { ConfigForm },
  setup() {
    const value = ref(null);
    const load = async () => { try { value.value = await api('GET', '/slow_subscriptions/settings'); } catch (e) { fail(e); } };
    load();
    async function save(edited) {
      try { value.value = await api('PUT', '/slow_subscriptions/settings', { body: edited }); ok(t('app.saved')); }
      catch (e) { fail(e); }
    }
    return { t, value, save };
  },
  template: `<section><header class="page-head"><h1>{{ t('slowSub.settingsTitle') }}</h1>
      <router-link class="button" to="/slow-sub">{{ t('menu.slowSub') }}</router-link></header>
    <ConfigForm v-if="value" :key="JSON.stringify(value)" :value="value" :label="t('slowSub.settingsTitle')" @save="save"></ConfigForm></section>`,
});
