// Monitoring → Subscriptions (with EMQX's filters) and Topics, both paged by the API.
import { defineComponent, reactive } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { usePaged, usePolling, DataTable, Pager } from '../ui.js';

export const Subscriptions = defineComponent({
  components: { DataTable, Pager },
  setup() {
    const filters = reactive({ node: '', clientid: '', match_topic: '', share_group: '' });
    const { state, load } = usePaged(() => '/subscriptions', () => ({ ...filters }), api);
    usePolling(() => load(), 10000);
    const columns = [{ key: 'clientid', label: t('clients.clientId') }, { key: 'topic', label: t('subs.topic') },
      { key: 'qos', label: t('subs.qos') }, { key: 'node', label: t('clients.node') },
      { key: 'nl', label: t('subs.nl') }, { key: 'rap', label: t('subs.rap') }, { key: 'rh', label: t('subs.rh') }];
    const reset = () => { Object.assign(filters, { node: '', clientid: '', match_topic: '', share_group: '' }); load(1); };
    return { t, filters, state, load, columns, reset, rowKey: (r) => r.clientid + r.topic };
  },
  template: `<section><h1>{{ t('menu.subscriptions') }}</h1>
    <form class="toolbar" role="search" @submit.prevent="load(1)">
      <input v-model="filters.node" :placeholder="t('clients.node')" :aria-label="t('clients.node')">
      <input v-model="filters.clientid" :placeholder="t('clients.clientId')" :aria-label="t('clients.clientId')">
      <input v-model="filters.match_topic" :placeholder="t('subs.topic')" :aria-label="t('subs.topic')">
      <input v-model="filters.share_group" :placeholder="t('subs.share')" :aria-label="t('subs.share')">
      <button type="submit" class="primary">{{ t('app.search') }}</button>
      <button type="button" @click="reset">{{ t('app.reset') }}</button></form>
    <DataTable :columns="columns" :rows="state.rows.map(r => ({...r, _key: r.clientid + ' ' + r.topic}))" row-key="_key"
      :loading="state.loading" :label="t('menu.subscriptions')">
      <template #cell-clientid="{row}"><router-link :to="'/clients/detail/' + encodeURIComponent(row.clientid)">{{ row.clientid }}</router-link></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager></section>`,
});

export const Topics = defineComponent({
  components: { DataTable, Pager },
  setup() {
    const filters = reactive({ topic: '' });
    const { state, load } = usePaged(() => '/topics', () => ({ ...filters }), api);
    usePolling(() => load(), 10000);
    const columns = [{ key: 'topic', label: t('subs.topic') }, { key: 'node', label: t('clients.node') }];
    return { t, filters, state, load, columns };
  },
  template: `<section><h1>{{ t('subs.topics') }}</h1>
    <form class="toolbar" role="search" @submit.prevent="load(1)">
      <input v-model="filters.topic" :placeholder="t('subs.topic')" :aria-label="t('subs.topic')">
      <button type="submit" class="primary">{{ t('app.search') }}</button></form>
    <DataTable :columns="columns" :rows="state.rows.map(r => ({...r, _key: r.topic + ' ' + r.node}))" row-key="_key"
      :loading="state.loading" :label="t('subs.topics')"></DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager></section>`,
});
