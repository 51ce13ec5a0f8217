// Monitoring → Cluster Overview with its tabs: the live numbers (GET /monitor_current every
// 2 s, as EMQX), charts of GET /monitor over 1 h .. 7 d, the nodes, and the node metrics.
import { defineComponent, reactive, ref, onMounted, onUnmounted, watch } from 'vue';
import { useRoute } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, usePolling, formatDuration, formatCell, DataTable } from '../ui.js';

const CARDS = [
  ['overview.allConnections', 'connections'], ['overview.liveConnections', 'live_connections'],
  ['overview.topics', 'topics'], ['overview.subscriptions', 'subscriptions'],
  ['overview.retained', 'retained_msg_count'],
];
const RATES = [['overview.received', 'received_msg_rate'], ['overview.sent', 'sent_msg_rate'],
               ['overview.dropped', 'dropped_msg_rate']];
const RANGES = [['overview.h1', 3600], ['overview.h6', 6 * 3600], ['overview.h12', 12 * 3600],
                ['overview.d1', 86400], ['overview.d7', 7 * 86400]];
// one chart per group of /monitor series
const CHARTS = [
  ['overview.liveConnections', ['connections', 'live_connections']],
  ['overview.subscriptions', ['subscriptions', 'topics']],
  ['overview.received', ['received', 'sent', 'dropped']],
];
const COLORS = ['#1f7a5c', '#3a6fd8', '#d8763a', '#a13ad8'];

// A uPlot line chart of samples [{time_stamp, key...}] for `keys`.
const Chart = defineComponent({
  props: { title: String, keys: Array, samples: Array },
  setup(props) {
    const el = ref(null);
    let plot = null;
    function data() {
      const xs = props.samples.map((s) => s.time_stamp / 1000);
      return [xs, ...props.keys.map((k) => props.samples.map((s) => s[k] ?? null))];
    }
    function draw() {
      if (!el.value || typeof window.uPlot === 'undefined') return;
      if (plot) { plot.setData(data()); return; }
      plot = new window.uPlot({
        width: Math.max(300, el.value.clientWidth), height: 200,
        series: [{}, ...props.keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 2 }))],
        axes: [{}, { size: 60 }],
      }, data(), el.value);
    }
    onMounted(draw);
    watch(() => props.samples, draw);
    onUnmounted(() => plot && plot.destroy());
    return { el };
  },
  template: `<figure class="chart"><figcaption>{{ title }}</figcaption>
    <div ref="el" role="img" :aria-label="title"></div></figure>`,
});

export const Overview = defineComponent({
  components: { Chart },
  setup() {
    const current = reactive({});
    const nodes = ref([]);
    const range = ref(3600);
    const samples = ref([]);
    usePolling(async () => {
      try { Object.assign(current, await api('GET', '/monitor_current')); } catch (e) { fail(e); }
    }, 2000);
    usePolling(async () => {
      try { nodes.value = await api('GET', '/nodes'); } catch (e) { fail(e); }
    }, 10000);
    async function loadSamples() {
      try { samples.value = await api('GET', '/monitor', { query: { latest: range.value } }); }
      catch (e) { fail(e); }
    }
    usePolling(loadSamples, 10000);
    watch(range, loadSamples);
    return { t, CARDS, RATES, RANGES, CHARTS, current, nodes, range, samples, formatDuration, formatCell };
  },
  template: `<section>
    <h1>{{ t('menu.overview') }}</h1>
    <div class="cards">
      <div v-for="[label, key] in CARDS" :key="key" class="card" :data-metric="key">
        <div class="card-label">{{ t(label) }}</div>
        <div class="card-value">{{ formatCell(current[key]) }}</div></div>
      <div v-for="[label, key] in RATES" :key="key" class="card" :data-metric="key">
        <div class="card-label">{{ t(label) }}</div>
        <div class="card-value">{{ formatCell(current[key]) }} <small>{{ t('overview.rate') }}</small></div></div>
    </div>
    <div class="nodes-strip">
      <div v-for="n in nodes" :key="n.node" class="node-chip">
        <router-link :to="'/dashboard/nodes/' + encodeURIComponent(n.node)">{{ n.node }}</router-link>
        <span :class="['status', n.node_status]">{{ n.node_status }}</span>
        <span>{{ t('overview.version') }} {{ n.version }}</span>
        <span>{{ t('overview.uptime') }} {{ formatDuration(n.uptime) }}</span></div></div>
    <div class="toolbar"><label>{{ t('overview.range') }}
      <select v-model.number="range">
        <option v-for="[label, secs] in RANGES" :key="secs" :value="secs">{{ t(label) }}</option>
      </select></label></div>
    <div class="charts">
      <Chart v-for="[label, keys] in CHARTS" :key="label" :title="t(label)" :keys="keys" :samples="samples"></Chart>
    </div></section>`,
});

const NODE_COLUMNS = [['nodes.name', 'node'], ['nodes.status', 'node_status'], ['nodes.version', 'version'],
  ['nodes.uptime', 'uptime'], ['nodes.connections', 'live_connections'], ['nodes.memory', 'memory_used'],
  ['nodes.cpu', 'load1'], ['nodes.maxFds', 'max_fds'], ['nodes.role', 'role']];

export const Nodes = defineComponent({
  components: { DataTable },
  setup() {
    const rows = ref([]);
    usePolling(async () => { try { rows.value = await api('GET', '/nodes'); } catch (e) { fail(e); } }, 5000);
    const columns = NODE_COLUMNS.map(([label, key]) => ({ key, label: t(label) }));
    return { t, rows, columns, formatDuration };
  },
  template: `<section><h1>{{ t('overview.nodes') }}</h1>
    <DataTable :columns="columns" :rows="rows" row-key="node" :label="t('overview.nodes')">
      <template #cell-node="{row}"><router-link :to="'/dashboard/nodes/' + encodeURIComponent(row.node)">{{ row.node }}</router-link></template>
      <template #cell-uptime="{row}">{{ formatDuration(row.uptime) }}</template>
    </DataTable></section>`,
});

export const NodeDetail = defineComponent({
  setup() {
    const route = useRoute();
    const node = ref(null);
    const stats = ref({});
    const name = route.params.nodeName;
    usePolling(async () => {
      try {
        node.value = await api('GET', `/nodes/${encodeURIComponent(name)}`);
        stats.value = await api('GET', `/nodes/${encodeURIComponent(name)}/stats`);
      } catch (e) { fail(e); }
    }, 5000);
    return { t, name, node, stats, formatCell };
  },
  template: `<section><h1>{{ name }}</h1>
    <dl v-if="node" class="facts"><template v-for="(v, k) in node" :key="k"><dt>{{ k }}</dt><dd>{{ formatCell(v) }}</dd></template></dl>
    <h2>Stats</h2>
    <dl class="facts"><template v-for="(v, k) in stats" :key="k"><dt>{{ k }}</dt><dd>{{ formatCell(v) }}</dd></template></dl>
    </section>`,
});

export const Metrics = defineComponent({
  setup() {
    const metrics = ref({});
    const stats = ref({});
    const filter = ref('');
    usePolling(async () => {
      try {
        const [m, s] = await Promise.all([api('GET', '/metrics', { query: { aggregate: true } }),
                                          api('GET', '/stats', { query: { aggregate: true } })]);
        metrics.value = Array.isArray(m) ? m[0] : m;
        stats.value = Array.isArray(s) ? s[0] : s;
      } catch (e) { fail(e); }
    }, 5000);
    const shown = (obj) => Object.entries(obj).filter(([k]) => k.includes(filter.value));
    return { t, metrics, stats, filter, shown, formatCell };
  },
  template: `<section><h1>{{ t('overview.metrics') }}</h1>
    <div class="toolbar"><input v-model="filter" :placeholder="t('app.search')" :aria-label="t('app.search')"></div>
    <div class="two-cols">
      <dl class="facts"><template v-for="[k, v] in shown(stats)" :key="k"><dt>{{ k }}</dt><dd>{{ formatCell(v) }}</dd></template></dl>
      <dl class="facts"><template v-for="[k, v] in shown(metrics)" :key="k"><dt>{{ k }}</dt><dd>{{ formatCell(v) }}</dd></template></dl>
    </div></section>`,
});
