/** Stylesheets imported by the app arrive as text (esbuild's 'text' loader, see viewer/bundle.ts). */
declare module '*.css' {
  const text: string;
  export default text;
}
