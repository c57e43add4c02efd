// The dashboard's entry point: mounts the app. Built by scripts/build.ts (esbuild) into
// dist/dashboard/app.js and served by the server at /dashboard; imports nothing of the server
// (only the contract's shapes and constants).
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { App } from './components/App.tsx';

render(<App />, document.getElementById('app')!);
