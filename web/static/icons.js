// Icons as inline SVG (no icon font, nothing fetched): 24×24 shapes drawn
// for this page. icon(name, slashed) returns an aria-hidden <svg>.
const PATHS = {
  mic: 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z',
  cam: 'M4 6h11a1 1 0 0 1 1 1v3l4-3v10l-4-3v3a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z',
  screen: 'M3 4h18v12H3zM5 6v8h14V6zM8 18h8v2H8z',
  gear: 'M10 2h4l.6 2.6 2.2 1.3 2.6-.8 2 3.4-2 1.9v2.6l2 1.9-2 3.4-2.6-.8-2.2 1.3L14 22h-4l-.6-2.6-2.2-1.3-2.6.8-2-3.4 2-1.9v-2.6l-2-1.9 2-3.4 2.6.8 2.2-1.3zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z',
  leave: 'M2 14.5C7.5 9 16.5 9 22 14.5l-2.5 3-4.3-1.8v-2.6a11 11 0 0 0-6.4 0v2.6l-4.3 1.8z',
  people: 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm7 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM1 20c0-4 4-6 8-6s8 2 8 6zm16.5 0c0-2-1-3.7-2.5-4.8 3 .2 6 1.6 6 4.8z',
};
const SLASH = 'M4.3 2.9l16.8 16.8-1.4 1.4L2.9 4.3z';
const NS = 'http://www.w3.org/2000/svg';

export function icon(name, slashed = false) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('svg-icon');
  for (const d of slashed ? [PATHS[name], SLASH] : [PATHS[name]]) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    p.setAttribute('fill-rule', 'evenodd');
    svg.append(p);
  }
  return svg;
}

// fillIcons puts the icon named by data-icon into every .icon element.
export function fillIcons(root = document) {
  for (const el of root.querySelectorAll('.icon[data-icon]')) {
    el.replaceChildren(icon(el.dataset.icon), icon(el.dataset.icon, true));
  }
}
