// ECharts options for the figures and the wall display, from /api/figures.
import { i18n } from './i18n/index.js'
import { STATUS_COLOURS } from './statuses.js'
import { categoryName } from './store.js'

const t = (...a) => i18n.global.t(...a)
const AXIS = { axisLine: { lineStyle: { color: '#35506e' } }, splitLine: { lineStyle: { color: '#16283d' } } }
const FUNNEL_COLOURS = ['#3ba0ff', '#36cbcb', '#4ecb73', '#fbd437', '#f2637b']

export function funnelOption(figures, big = false) {
  return {
    tooltip: { trigger: 'item', formatter: '{b}: {c}' },
    series: [{
      type: 'funnel', sort: 'none', left: '8%', width: '84%', top: 10, bottom: 10, minSize: '34%', gap: 3,
      label: { show: true, position: 'inside', fontSize: big ? 22 : 13, fontWeight: 'bold', color: '#06101d',
        formatter: '{b}  {c}' },
      data: figures.funnel.map((r, i) => ({ name: t(`funnel.${r.key}`), value: r.count,
        itemStyle: { color: FUNNEL_COLOURS[i] } })),
    }],
  }
}

export function trendOption(figures, big = false) {
  const days = figures.trend.map((r) => r.key.slice(5))
  const size = big ? 18 : 12
  return {
    tooltip: { trigger: 'axis' },
    legend: { top: 0, textStyle: { fontSize: size } },
    grid: { left: 40, right: 16, top: 36, bottom: 28 },
    xAxis: { type: 'category', data: days, axisLabel: { fontSize: size }, ...AXIS },
    yAxis: { type: 'value', minInterval: 1, axisLabel: { fontSize: size }, ...AXIS },
    series: [
      { name: t('figures.reported'), type: 'bar', data: figures.trend.map((r) => r.count), itemStyle: { color: '#3ba0ff' },
        barMaxWidth: 28 },
      { name: t('figures.dispatched'), type: 'line', data: figures.evaluation.day.map((r) => r.dispatched),
        itemStyle: { color: '#fbd437' } },
    ],
  }
}

export function barsOption(rows, label, colour, big = false) {
  const top = [...rows].reverse()
  const size = big ? 16 : 12
  return {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    grid: { left: big ? 200 : 150, right: 30, top: 8, bottom: 8 },
    xAxis: { type: 'value', minInterval: 1, axisLabel: { fontSize: size }, ...AXIS },
    yAxis: { type: 'category', data: top.map(label), axisLabel: { fontSize: size, width: big ? 190 : 140, overflow: 'truncate' },
      ...AXIS },
    series: [{ type: 'bar', data: top.map((r) => r.count), barMaxWidth: big ? 26 : 18,
      itemStyle: { color: colour, borderRadius: [0, 4, 4, 0] },
      label: { show: true, position: 'right', fontSize: size } }],
  }
}

export function gridsOption(figures, big = false) {
  return barsOption(figures.busiest_grids, (r) => (r.name ? `${r.name}\n${r.key}` : r.key), '#36cbcb', big)
}

export function categoriesOption(figures, big = false) {
  return barsOption(figures.busiest_categories, (r) => categoryName(r.key), '#f2637b', big)
}

export function statusOption(figures, big = false) {
  return {
    tooltip: { trigger: 'item' },
    legend: { orient: 'vertical', right: 0, top: 'middle', textStyle: { fontSize: big ? 16 : 12 } },
    series: [{
      type: 'pie', radius: ['45%', '72%'], center: ['38%', '50%'], label: { show: false },
      data: figures.statuses.map((r) => ({ name: t(`status.${r.key}`), value: r.count,
        itemStyle: { color: STATUS_COLOURS[r.key] } })),
    }],
  }
}

export function kpis(figures) {
  const all = figures.evaluation.department.find((r) => r.key === 'all') || {}
  const open = figures.statuses.reduce((n, r) => n + r.open, 0)
  return [
    { key: 'reported', value: figures.total },
    { key: 'open', value: open },
    { key: 'closureRate', value: all.closure_rate, percent: true },
    { key: 'onTimeClosureRate', value: all.on_time_closure_rate, percent: true },
    { key: 'meanHours', value: all.mean_hours_to_resolve, digits: 1 },
  ]
}
