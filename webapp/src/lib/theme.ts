// The system's colour scheme (prefers-color-scheme), followed live: the CSS switches by media query,
// and the canvas charts, which CSS cannot reach, take their colours from here.
import { useSyncExternalStore } from 'react';
import { ColorType } from 'lightweight-charts';

export type Scheme = 'light' | 'dark';

const LIGHT = '(prefers-color-scheme: light)';

function subscribe(onChange: () => void): () => void {
  const query = matchMedia(LIGHT);
  query.addEventListener('change', onChange);
  return () => query.removeEventListener('change', onChange);
}

const current = (): Scheme => (matchMedia(LIGHT).matches ? 'light' : 'dark');

export function useColorScheme(): Scheme {
  return useSyncExternalStore(subscribe, current, () => 'dark');
}

export interface Palette {
  panel: string;
  text: string;
  grid: string;
  line: string;
  up: string;
  down: string;
  /** Exit markers: neither a gain nor a loss colour. */
  neutral: string;
  series: string[];
}

// The same colours as index.css's --panel, --text, --up and --down of each scheme.
export const PALETTES: Record<Scheme, Palette> = {
  dark: { panel: '#11161d', text: '#c9d4e0', grid: '#1e2731', line: '#4da3ff', up: '#26a69a', down: '#ef5350', neutral: '#c9d4e0',
    series: ['#f5a623', '#7ed321', '#bd10e0', '#50e3c2'] },
  light: { panel: '#ffffff', text: '#1b2430', grid: '#e6ebf1', line: '#0b62c4', up: '#0f8a7e', down: '#c62828', neutral: '#5b6b7c',
    series: ['#c77800', '#3d8b00', '#8e0bb0', '#0a8f7a'] },
};

export function chartOptions(scheme: Scheme) {
  const p = PALETTES[scheme];
  return {
    layout: { background: { type: ColorType.Solid, color: p.panel }, textColor: p.text },
    grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } },
    timeScale: { timeVisible: true, secondsVisible: false },
    autoSize: true,
  } as const;
}
