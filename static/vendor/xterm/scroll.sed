# Makes xterm.js's viewport follow a flood of output once per frame, not once per line.
# Applied after csp.sed:
#   sed -f csp.sed -f scroll.sed package/lib/xterm.mjs > xterm.mjs
# xterm.js 6.0.0's Viewport syncs its scrollbar synchronously on every buffer scroll (each line
# feed once the screen is full): scroll dimensions, position, the scrollbar's DOM and a
# show/hide timer per line, which made `seq 1 200000` run 100-300 ms tasks. The sync now waits
# for the next render frame (the renderer's own refresh callback, as Viewport.queueSync does),
# so what is shown is the same, synced once per frame.
s/this\._register(this\._bufferService\.onScroll(()=>this\._sync()))/this._register(this._bufferService.onScroll(()=>{this._scrollSyncQueued||(this._scrollSyncQueued=!0,this._renderService.addRefreshCallback(()=>{this._scrollSyncQueued=!1,this._sync()}))}))/
