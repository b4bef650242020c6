// The map's style, shared by the map page and the wall: the grid hierarchy from the grid
// service's vector tiles, cases coloured by state, officers with the age of their position.
// Nothing comes from outside: the tiles are the console's, the labels use the system's fonts
// (no glyph server), MapLibre's worker is served with the page. An operator's own base map
// (GRIDBUS_CONSOLE_TILE_URL) goes underneath when configured.
import * as maplibregl from 'maplibre-gl'
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url'
import { age } from './format.js'
import { STATUS_COLOURS, STATUSES } from './statuses.js'

maplibregl.setWorkerUrl(workerUrl)
export { maplibregl }

export function prewarm() {
  maplibregl.prewarm()
}

const FONTS = ['Microsoft YaHei', 'PingFang SC', 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'sans-serif']
// Deepest first: a click picks the smallest unit under it.
export const LEVEL_ORDER = ['grid', 'community', 'street', 'district', 'city']
const STALE_POSITION_MS = 10 * 60 * 1000

export function incidentFeatures(rows, selectedId = '') {
  return {
    type: 'FeatureCollection',
    features: rows.map((r) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [r.incident.lon, r.incident.lat] },
      properties: { id: r.incident.id, status: r.incident.status, urgent: r.urgent ? 1 : 0,
        selected: r.incident.id === selectedId ? 1 : 0 },
    })),
  }
}

export function officerFeatures(list, now = Date.now()) {
  return {
    type: 'FeatureCollection',
    features: list.filter((o) => o.position).map((o) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [o.position.lon, o.position.lat] },
      properties: { id: o.id, name: o.name, label: `${o.name} · ${age(o.position.reported_at, now)}`,
        stale: now - new Date(o.position.reported_at).getTime() > STALE_POSITION_MS ? 1 : 0 },
    })),
  }
}

export function mapStyle(tileUrl, { big = false } = {}) {
  const colourByStatus = ['match', ['get', 'status'], ...STATUSES.flatMap((s) => [s, STATUS_COLOURS[s]]), '#999']
  const line = (level, colour, width, dash) => ({
    id: `unit-line-${level}`, type: 'line', source: 'units', 'source-layer': 'units',
    filter: ['==', ['get', 'level'], level],
    paint: { 'line-color': colour, 'line-width': width, ...(dash ? { 'line-dasharray': dash } : {}) },
  })
  const scale = big ? 1.4 : 1
  return {
    version: 8,
    sources: {
      units: { type: 'vector', tiles: [`${location.origin}/api/tiles/{z}/{x}/{y}.pbf`], maxzoom: 17, promoteId: 'code' },
      incidents: { type: 'geojson', data: incidentFeatures([]) },
      officers: { type: 'geojson', data: officerFeatures([]) },
      ...(tileUrl ? { base: { type: 'raster', tiles: [tileUrl], tileSize: 256 } } : {}),
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#07111f' } },
      ...(tileUrl ? [{ id: 'base', type: 'raster', source: 'base', paint: { 'raster-opacity': 0.55 } }] : []),
      {
        id: 'unit-fill', type: 'fill', source: 'units', 'source-layer': 'units',
        paint: {
          'fill-color': ['case', ['boolean', ['feature-state', 'selected'], false], '#1f6fb2',
            ['match', ['get', 'level'], 'grid', '#0f2a45', 'community', '#0d2440', 'street', '#0b2038', '#0a1b30']],
          'fill-opacity': ['case', ['boolean', ['feature-state', 'selected'], false], 0.6, 0.5],
        },
      },
      line('grid', '#24507a', 0.7),
      line('community', '#2f6a9e', 1.2, [3, 2]),
      line('street', '#3f86c4', 1.8),
      line('district', '#5fb0ff', 2.8),
      line('city', '#8fd0ff', 3.2),
      {
        id: 'unit-label', type: 'symbol', source: 'units', 'source-layer': 'labels',
        layout: {
          'text-field': ['get', 'name'], 'text-font': FONTS,
          'text-size': ['*', scale, ['match', ['get', 'level'], 'city', 18, 'district', 16, 'street', 13, 'community', 12, 11]],
          'symbol-sort-key': ['match', ['get', 'level'], 'city', 0, 'district', 1, 'street', 2, 'community', 3, 4],
          'text-padding': 6,
        },
        paint: { 'text-color': '#a9c8e8', 'text-halo-color': '#07111f', 'text-halo-width': 1.5 },
      },
      {
        id: 'incident-halo', type: 'circle', source: 'incidents', filter: ['==', ['get', 'urgent'], 1],
        paint: { 'circle-radius': 13 * scale, 'circle-color': '#ff4d4f', 'circle-opacity': 0.25, 'circle-blur': 0.4 },
      },
      {
        id: 'incidents', type: 'circle', source: 'incidents',
        paint: {
          'circle-radius': ['case', ['==', ['get', 'selected'], 1], 9, 6.5 * scale],
          'circle-color': colourByStatus, 'circle-stroke-width': ['case', ['==', ['get', 'selected'], 1], 3, 1.5],
          'circle-stroke-color': '#ffffff',
        },
      },
      {
        id: 'officers', type: 'circle', source: 'officers',
        paint: {
          'circle-radius': 5.5 * scale, 'circle-color': ['case', ['==', ['get', 'stale'], 1], '#6b7c8f', '#40a9ff'],
          'circle-stroke-color': '#e6f7ff', 'circle-stroke-width': 2,
        },
      },
      {
        id: 'officer-label', type: 'symbol', source: 'officers', minzoom: 11,
        layout: { 'text-field': ['get', 'label'], 'text-font': FONTS, 'text-size': 11 * scale, 'text-offset': [0, 1.3],
          'text-anchor': 'top' },
        paint: { 'text-color': '#91d5ff', 'text-halo-color': '#07111f', 'text-halo-width': 1.2 },
      },
    ],
  }
}
