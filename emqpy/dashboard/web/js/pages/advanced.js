// Management → Advanced MQTT: Topic Rewrite (ordered rules: the first that matches a topic
// rewrites it) and Auto Subscribe (topics a client is subscribed to when it connects). Both
// APIs take the whole list in one PUT, so each change sends the edited list.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, DataTable, Dialog } from '../ui.js';

// rows, load() and put(list) for an API that is a list read by GET and replaced by PUT
function useWholeList(path) {
  const rows = ref([]);
  const load = async () => { try { rows.value = await api('GET', path); } catch (e) { fail(e); } };
  async function put(list, message) {
    try { rows.value = await api('PUT', path, { body: list }); ok(message); return true; }
    catch (e) { fail(e); return false; }
  }
  load();
  return { rows, load, put };
}

// the dialog's state: which row is edited (-1: a new one) and the form
function useEditor(blank) {
  const editing = ref(null);
  const form = reactive(blank());
  const open = (index, row) => { Object.assign(form, blank(), row || {}); editing.value = index; };
  return { editing, form, open };
}

const ACTIONS = ['publish', 'subscribe', 'all'];

export const TopicRewrite = defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const { rows, put } = useWholeList('/mqtt/topic_rewrite');
    const { editing, form, open } = useEditor(() => ({ action: 'publish', source_topic: '', re: '', dest_topic: '' }));
    const columns = [{ key: 'action', label: t('rewrite.action') }, { key: 'source_topic', label: t('rewrite.source') },
      { key: 're', label: t('rewrite.re') }, { key: 'dest_topic', label: t('rewrite.dest') },
      { key: 'actions', label: t('app.actions') }];
    async function submit() {
      const list = rows.value.map((r) => ({ ...r }));
      const rule = { action: form.action, source_topic: form.source_topic, re: form.re, dest_topic: form.dest_topic };
      if (editing.value < 0) list.push(rule); else list[editing.value] = rule;
      if (await put(list, t('app.saved'))) editing.value = null;
    }
    async function move(index, by) {
      const list = rows.value.map((r) => ({ ...r }));
      const [rule] = list.splice(index, 1);
      list.splice(index + by, 0, rule);
      await put(list, t('app.saved'));
    }
    async function remove(index) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      await put(rows.value.filter((_, i) => i !== index), t('app.deleted'));
    }
    // DataTable needs a key per row: the position (rules may repeat)
    const keyed = () => rows.value.map((r, i) => ({ ...r, _i: i }));
    return { t, rows, keyed, columns, editing, form, open, submit, move, remove, ACTIONS };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.topicRewrite') }}</h1>
      <button type="button" class="primary" @click="open(-1)">{{ t('app.create') }}</button></header>
    <p>{{ t('rewrite.hint') }}</p>
    <DataTable :columns="columns" :rows="keyed()" row-key="_i" :label="t('menu.topicRewrite')">
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="open(row._i, row)" :aria-label="t('app.edit') + ' ' + row.source_topic">{{ t('app.edit') }}</button>
        <button type="button" class="link" :disabled="row._i === 0" @click="move(row._i, -1)"
          :aria-label="t('rewrite.up') + ' ' + row.source_topic">↑</button>
        <button type="button" class="link" :disabled="row._i === rows.length - 1" @click="move(row._i, 1)"
          :aria-label="t('rewrite.down') + ' ' + row.source_topic">↓</button>
        <button type="button" class="link danger" @click="remove(row._i)" :aria-label="t('app.delete') + ' ' + row.source_topic">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="editing !== null" :title="editing < 0 ? t('app.create') : t('app.edit')" @close="editing = null">
      <form class="form" @submit.prevent="submit">
        <label>{{ t('rewrite.action') }}<select v-model="form.action">
          <option v-for="a in ACTIONS" :key="a" :value="a">{{ a }}</option></select></label>
        <label>{{ t('rewrite.source') }}<input v-model="form.source_topic" required></label>
        <label>{{ t('rewrite.re') }}<input v-model="form.re" required></label>
        <label>{{ t('rewrite.dest') }}<input v-model="form.dest_topic" required></label>
        <div class="buttons"><button type="button" @click="editing = null">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.confirm') }}</button></div></form></Dialog></section>`,
});

export const AutoSubscribe = defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const { rows, put } = useWholeList('/mqtt/auto_subscribe');
    const { editing, form, open } = useEditor(() => ({ topic: '', qos: 0, nl: 0, rap: 0, rh: 0 }));
    const columns = [{ key: 'topic', label: t('autoSub.topic') }, { key: 'qos', label: t('subs.qos') },
      { key: 'nl', label: t('subs.nl') }, { key: 'rap', label: t('subs.rap') }, { key: 'rh', label: t('subs.rh') },
      { key: 'actions', label: t('app.actions') }];
    async function submit() {
      const list = rows.value.map((r) => ({ ...r }));
      const topic = { topic: form.topic, qos: Number(form.qos), nl: Number(form.nl), rap: Number(form.rap), rh: Number(form.rh) };
      if (editing.value < 0) list.push(topic); else list[editing.value] = topic;
      if (await put(list, t('app.saved'))) editing.value = null;
    }
    async function remove(index) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      await put(rows.value.filter((_, i) => i !== index), t('app.deleted'));
    }
    const keyed = () => rows.value.map((r, i) => ({ ...r, _i: i }));
    return { t, keyed, columns, editing, form, open, submit, remove };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.autoSub') }}</h1>
      <button type="button" class="primary" @click="open(-1)">{{ t('app.create') }}</button></header>
    <p>{{ t('autoSub.hint') }}</p>
    <DataTable :columns="columns" :rows="keyed()" row-key="_i" :label="t('menu.autoSub')">
      <template #cell-nl="{row}">{{ row.nl ? t('app.yes') : t('app.no') }}</template>
      <template #cell-rap="{row}">{{ row.rap ? t('app.yes') : t('app.no') }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="open(row._i, row)" :aria-label="t('app.edit') + ' ' + row.topic">{{ t('app.edit') }}</button>
        <button type="button" class="link danger" @click="remove(row._i)" :aria-label="t('app.delete') + ' ' + row.topic">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="editing !== null" :title="editing < 0 ? t('app.create') : t('app.edit')" @close="editing = null">
      <form class="form" @submit.prevent="submit">
        <label>{{ t('autoSub.topic') }}<input v-model="form.topic" required></label>
        <label>{{ t('subs.qos') }}<select v-model.number="form.qos">
          <option v-for="q in [0, 1, 2]" :key="q" :value="q">{{ q }}</option></select></label>
        <label>{{ t('subs.nl') }}<select v-model.number="form.nl">
          <option :value="0">{{ t('app.no') }}</option><option :value="1">{{ t('app.yes') }}</option></select></label>
        <label>{{ t('subs.rap') }}<select v-model.number="form.rap">
          <option :value="0">{{ t('app.no') }}</option><option :value="1">{{ t('app.yes') }}</option></select></label>
        <label>{{ t('subs.rh') }}<select v-model.number="form.rh">
          <option v-for="h in [0, 1, 2]" :key="h" :value="h">{{ h }}</option></select></label>
        <div class="buttons"><button type="button" @click="editing = null">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.confirm') }}</button></div></form></Dialog></section>`,
});
