// Incident states in the lifecycle's order, and their colours on the map and in badges.
export const STATUSES = ['reported', 'dispatched', 'in_progress', 'resolved', 'verified', 'closed', 'rejected', 'reopened', 'voided', 'parked']
export const OPEN_STATUSES = ['reported', 'dispatched', 'in_progress', 'resolved', 'verified', 'reopened']

export const STATUS_COLOURS = {
  reported: '#ff4d4f',
  dispatched: '#fa8c16',
  in_progress: '#fadb14',
  resolved: '#52c41a',
  verified: '#13c2c2',
  closed: '#8c8c8c',
  rejected: '#5c6b7a',
  reopened: '#eb2f96',
  voided: '#bfbfbf',
  parked: '#722ed1',
}
