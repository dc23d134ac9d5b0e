import { LabIcon } from '@jupyterlab/ui-components';

// A flask: experiments. Uses jp-icon3 so it follows the theme.
const flaskSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <path class="jp-icon3" fill="#616161" d="M9 2h6v2h-1v5.17l5.62 9.36A2 2 0 0 1 17.9 22H6.1a2 2 0 0 1-1.72-3.47L10 9.17V4H9V2zm3 9.2-3.4 5.8h6.8L12 11.2z"/>
</svg>`;

export const researchIcon = new LabIcon({
  name: 'jupyter-research-agent:research',
  svgstr: flaskSvg
});
