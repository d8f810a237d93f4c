# Makes xterm.js's DOM renderer work under the page's CSP (style-src 'self': no <style> text,
# no style attributes). Applied to @xterm/xterm's lib/xterm.mjs:
#   sed -f csp.sed package/lib/xterm.mjs > xterm.mjs
# 1. Its three <style> elements (scrollbar, theme colours, row sizes) become inert <template>
#    stand-ins (even an empty <style> is a CSP violation) whose text goes to a constructable
#    stylesheet, adopted by the document until the stand-in is removed.
# 2. Truecolor cells get their colour through the CSSOM (el.style) instead of a style attribute.
# 3. The source-map comment goes (the map is not shipped).
1i\
/* Maestro: patched by csp.sed and scroll.sed (see README.md). */\
function cspStyleElement(doc){const element=doc.createElement("template"),sheet=new doc.defaultView.CSSStyleSheet();let text="";doc.adoptedStyleSheets=[...doc.adoptedStyleSheets,sheet];Object.defineProperty(element,"textContent",{get:()=>text,set(value){text=String(value);sheet.replaceSync(text)}});element.remove=()=>{doc.adoptedStyleSheets=doc.adoptedStyleSheets.filter(s=>s!==sheet);Element.prototype.remove.call(element)};return element}
s/\([A-Za-z_$][A-Za-z0-9_$.]*\)\.createElement("style")/cspStyleElement(\1)/g
s/t\.setAttribute("style",`${t\.getAttribute("style")||""}${e};`)/t.style.cssText+=e+";"/
/^\/\/# sourceMappingURL=/d
